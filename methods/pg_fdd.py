"""PG-FDD (Lin et al., CVPR 2024): disentangled encoders, AdaIN fusion, a bi-level fair loss and SAM.

Three encoders without shared weights look at each image: a forgery encoder (split by two projections
into a domain-specific and a domain-agnostic forgery feature), a content encoder and a demographic
encoder. The detector classifies the demographic feature restyled by the domain-agnostic forgery feature
(AdaIN, no parameters), and a bi-level fair loss (CVaR within groups, smoothed CVaR over groups) trains
that head, so fairness is learned on features meant to survive a change of domain. A conditional
decoder reconstructs images from forgery and content codes, self and crossed between the real and fake
of each pair, to keep the codes disentangled. Every layer, loss, weight and default is the one of
docs/METHODS.md; the ablations a reader of the paper asks for are registered next to it.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.backbones import create_backbone, drop_final_activation
from bench.batch import Batch
from bench.config import MethodConfig, setting
from bench.errors import ConfigError
from bench.losses import cvar, grouped_cvar, masked_max, smoothed_cvar
from bench.method import METHODS, Method, MethodInfo, Needs
from bench.sam import SAM

# What `profile` sets. "official": the public code's choices where they differ from the corrected method
# (docs/METHODS.md, "PG-FDD against the authors' code"); everything else already matches it.
PROFILES: dict[str, dict[str, Any]] = {
    "default": {},
    "official": {"outer": "official", "score": "z1"},
}


@dataclass
class PgFddConfig(MethodConfig):
    """PG-FDD's hyper-parameters; the defaults are the paper's (docs/METHODS.md)."""

    use_sam: bool = setting(True, help="SAM over the base optimiser (False: plain steps)")
    rho: float = setting(0.05, minimum=0.0, help="SAM neighbourhood radius")
    fusion: bool = setting(True, help="classify the AdaIN fusion (False: classify the domain-agnostic feature)")
    fair_loss: bool = setting(True, help="bi-level fair loss on the detector head (False: plain CE)")
    dem_loss: bool = setting(True, help="LDAM loss on the demographic head")
    outer: str = setting("smoothed", choices=("smoothed", "official", "cvar", "max"),
                         help="outer level over groups: the paper's smoothed CVaR; 'official': its value where "
                              "the public code's float32 guard stops the search; plain 'cvar'; worst group 'max'")
    alpha_in: float = setting(0.9, minimum=0.001, maximum=1.0)
    alpha_out: float = setting(0.5, minimum=0.001, maximum=1.0)
    tau1: float = setting(1e-3, minimum=1e-9)
    tau2: float = setting(1e-4, minimum=0.0)
    ldam_max_margin: float = setting(0.5, minimum=0.0)
    ldam_scale: float = setting(30.0, minimum=0.0)
    triplet_margin: float = setting(3.0, minimum=0.0)
    logit_dropout: float = setting(0.2, minimum=0.0, maximum=1.0, help="dropout on every head's logits")
    decoder_dropout: float = setting(0.3, minimum=0.0, maximum=1.0)
    encoder_dim: int = setting(0, minimum=0, help="channels after each encoder's 1x1 adjust layer; 0: "
                               "min(512, backbone channels), i.e. the paper's 512 for Xception")
    w_sha: float = setting(1.0, minimum=0.0)
    w_spe: float = setting(0.1, minimum=0.0)
    w_rec: float = setting(0.3, minimum=0.0)
    w_con: float = setting(0.05, minimum=0.0)
    w_dem: float = setting(0.1, minimum=0.0)
    w_fair: float = setting(1.0, minimum=0.0)
    score: str = setting("difference", choices=("difference", "z1"),
                         help="fake-logit z1 - z0 (default) or z1 alone, as the public test script scores")
    profile: str = setting("default", choices=tuple(PROFILES),
                           help="'official' sets every setting where the public code differs to its choice: "
                                + ", ".join(f"{k} = {v!r}" for k, v in PROFILES["official"].items()))

    def __post_init__(self) -> None:
        """Apply the profile: its settings replace the defaults; a different value set by hand is an error."""
        defaults = {f.name: f.default for f in dataclasses.fields(self)}
        for key, value in PROFILES[self.profile].items():
            if getattr(self, key) not in (value, defaults[key]):
                raise ConfigError(f"pg-fdd.profile={self.profile} sets {key} = {value!r}, but {key} = "
                                  f"{getattr(self, key)!r} was asked for; drop one of the two settings.")
            setattr(self, key, value)


# ----------------------------------------------------------------------------------------------- blocks
def adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Restyle ``content`` (N, C, h, w) with the per-sample, per-channel statistics of ``style``:
    sigma(style) * (content - mu(content)) / sigma(content) + mu(style), sigma = sqrt(unbiased var + eps).

    On a 1 x 1 map the unbiased variance is undefined; the biased one (0) is used there.
    """
    c_centered, c_var = _centered_and_var(content)
    s_centered, s_var = _centered_and_var(style)
    return (s_var + eps).sqrt() * c_centered / (c_var + eps).sqrt() + (style - s_centered)


def _centered_and_var(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x minus its spatial mean, and its unbiased spatial variance (biased on a 1 x 1 map), per sample and
    channel. Written out: torch.var is several times slower on channels-last maps."""
    positions = x.shape[2] * x.shape[3]
    centered = x - x.mean(dim=(2, 3), keepdim=True)
    var = centered.square().sum(dim=(2, 3), keepdim=True) / max(positions - 1, 1)
    return centered, var


def ldam_margins(group_counts: tuple[int, ...] | list[int], max_margin: float = 0.5) -> torch.Tensor:
    """LDAM margins Delta_g = max_margin * n_g^(-1/4) / max_k n_k^(-1/4) (Cao et al., 2019): rarer groups
    get larger margins. A group absent from training (n_g = 0) gets the largest margin."""
    counts = torch.tensor([max(int(n), 1) for n in group_counts], dtype=torch.float32)
    inv = counts.pow(-0.25)
    return max_margin * inv / inv.max()


def ldam_loss(logits: torch.Tensor, target: torch.Tensor, margins: torch.Tensor, scale: float) -> torch.Tensor:
    """Cross-entropy of ``scale`` x (logits with the true class's margin subtracted); samples whose target
    is outside [0, K) (unknown group) are left out; 0 when none is left."""
    known = (target >= 0) & (target < logits.shape[1])
    safe = torch.where(known, target, torch.zeros_like(target))
    shifted = logits - F.one_hot(safe, logits.shape[1]).to(logits.dtype) * margins.to(logits)[safe, None]
    per_sample = F.cross_entropy(scale * shifted, safe, reduction="none")
    return (per_sample * known).sum() / known.sum().clamp_min(1)


def _conv_block(cin: int, cout: int, kernel: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel, padding=kernel // 2)


class Encoder(nn.Module):
    """A backbone's feature map before its final activation, then the 1x1 "adjust" layer: conv to ``dim``
    channels + BN + ReLU.

    The authors' Xception encoder feeds the adjust layer with its last BatchNorm's output (bn4), not with
    relu(bn4) as timm's forward_features ends; `drop_final_activation` does the same for any backbone whose
    map ends in an activation module (the baseline keeps the activation, as the authors' baseline does).
    """

    def __init__(self, config: PgFddConfig, *, image_size: int, dim: int = 0) -> None:
        super().__init__()
        self.backbone = create_backbone(config.backbone, pretrained=config.pretrained)
        self.dropped_activation = drop_final_activation(self.backbone, image_size=image_size)
        self.dim = dim or config.encoder_dim or 2 * (min(512, self.backbone.num_features) // 2)
        self.adjust = nn.Sequential(nn.Conv2d(self.backbone.num_features, self.dim, 1, bias=False),
                                    nn.BatchNorm2d(self.dim), nn.ReLU(inplace=True))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.adjust(self.backbone(images))  # (N, encoder_dim, h, w)


class Projection(nn.Sequential):
    """Three 1x1 convolutions: cin -> dim, LeakyReLU, dim -> dim, LeakyReLU, dim -> dim (512 -> 256 ... for
    Xception)."""

    def __init__(self, cin: int, dim: int) -> None:
        super().__init__(_conv_block(cin, dim), nn.LeakyReLU(inplace=True), _conv_block(dim, dim),
                         nn.LeakyReLU(inplace=True), _conv_block(dim, dim))


class Head(nn.Module):
    """Global average pool -> Linear(dim, 512) -> LeakyReLU -> Linear(512, K), dropout on the logits.

    Returns the logits and the pooled feature (the triplet loss measures distances between those)."""

    def __init__(self, dim: int, classes: int, dropout: float) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim, 512), nn.LeakyReLU(inplace=True), nn.Linear(512, classes))
        self.dropout = nn.Dropout(dropout)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = features.mean(dim=(2, 3))  # (N, dim)
        return self.dropout(self.mlp(pooled)), pooled


class ConditionalDecoder(nn.Module):
    """UCF's conditional decoder: reconstructs an image from a content code restyled by a forgery code.

    Each stage restyles the content stream with the forgery stream (AdaIN), upsamples both x2 (bilinear,
    corners aligned as in the public code), applies dropout and the same double 3x3 conv + ReLU to both; a
    1x1 conv to RGB, a bilinear resize to the input size and tanh finish. The forgery stream only styles
    the next stage, so the last stage leaves it alone (its output would never be used). In the paper (8 x 8
    maps of 256 px inputs) three stages bring the map to 64 x 64, a quarter of the input's side; the number
    of stages follows the same rule for any backbone and size (one to three stages, channels halving from
    ``dim``).
    """

    def __init__(self, dim: int, feature_size: int, image_size: int, dropout: float) -> None:
        super().__init__()
        stages = min(3, max(1, round(math.log2(max(image_size / 4 / max(feature_size, 1), 1)))))
        self.stages = stages
        channels = [dim // 2**i for i in range(stages + 1)]
        self.convs = nn.ModuleList(
            nn.Sequential(_conv_block(cin, cout, 3), nn.ReLU(inplace=True), _conv_block(cout, cout, 3),
                          nn.ReLU(inplace=True))
            for cin, cout in itertools.pairwise(channels))
        self.dropout = dropout
        self.to_rgb = nn.Conv2d(channels[-1], 3, 1)
        self.image_size = image_size

    def forward(self, forgery: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        x, c = content, forgery
        for stage, conv in enumerate(self.convs, start=1):
            x = conv(self._dropout(_upsample(adain(x, c), scale_factor=2)))
            if stage < self.stages:
                c = conv(self._dropout(_upsample(c, scale_factor=2)))
        out = _upsample(self.to_rgb(x), size=(self.image_size, self.image_size))
        return torch.tanh(out)  # (N, 3, H, W) in [-1, 1], like the normalised inputs

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        """Inverted dropout from a uniform mask: the same as nn.Dropout, twice as fast on the CPU, where
        Bernoulli sampling of the decoder's maps was a tenth of a PG-FDD step. The mask is made in place
        in the uniforms' buffer and already scaled, so the forward and the backward pass are one product each."""
        if not self.training or self.dropout == 0:
            return x
        scaled_keep = torch.rand_like(x).ge_(self.dropout).mul_(1 / (1 - self.dropout))
        return x * scaled_keep


def _upsample(x: torch.Tensor, **how: Any) -> torch.Tensor:
    return F.interpolate(x, mode="bilinear", align_corners=True, **how)


class PgFddNet(nn.Module):
    """Encoders, projections, heads and decoder; ``forward`` returns every output the losses need."""

    def __init__(self, config: PgFddConfig, info: MethodInfo) -> None:
        super().__init__()
        c = config
        size = info.image_size
        self.forgery_encoder = Encoder(c, image_size=size)
        dim = self.forgery_encoder.dim  # encoder channels (512 for Xception)
        self.content_encoder = Encoder(c, image_size=size, dim=dim)
        self.demographic_encoder = Encoder(c, image_size=size, dim=dim)
        # Projected features have half the encoder's channels (256 for Xception), so the forgery code
        # concat(f_s, f_a) and the content code have the same width and AdaIN can pair them.
        feat = dim // 2
        self.p_spe, self.p_sha, self.p_dem = Projection(dim, feat), Projection(dim, feat), Projection(dim, feat)
        self.head_spe = Head(feat, info.num_manipulations + 1, c.logit_dropout)
        self.head_sha = Head(feat, 2, c.logit_dropout)
        self.head_dem = Head(feat, info.num_groups, c.logit_dropout)
        self.head_fused = Head(feat, 2, c.logit_dropout) if c.fusion else None
        feature_size = _feature_size(self.forgery_encoder, info.image_size)
        self.decoder = ConditionalDecoder(dim, feature_size, info.image_size, c.decoder_dropout)

    def detector_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 2) real/fake logits of the detector head, without the training-only branches."""
        forgery = self.forgery_encoder(images)
        f_a = self.p_sha(forgery)
        if self.head_fused is None:
            return self.head_sha(f_a)[0]
        f_d = self.p_dem(self.demographic_encoder(images))
        return self.head_fused(adain(f_d, f_a))[0]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        forgery = self.forgery_encoder(images)
        content = self.content_encoder(images)
        demographic = self.demographic_encoder(images)
        f_s, f_a, f_d = self.p_spe(forgery), self.p_sha(forgery), self.p_dem(demographic)
        out: dict[str, torch.Tensor] = {}
        out["spe"], out["spe_feat"] = self.head_spe(f_s)
        out["sha"], out["sha_feat"] = self.head_sha(f_a)
        out["dem"], _ = self.head_dem(f_d)
        out["detector"] = self.head_fused(adain(f_d, f_a))[0] if self.head_fused is not None else out["sha"]
        out["forgery_code"] = torch.cat([f_s, f_a], dim=1)  # (N, dim, h, w)
        out["content_code"] = adain(demographic, content)  # (N, dim, h, w)
        return out


def _feature_size(encoder: Encoder, image_size: int) -> int:
    with torch.no_grad():
        was_training = encoder.training
        encoder.eval()
        size = encoder.backbone(torch.zeros(1, 3, image_size, image_size)).shape[-1]
        encoder.train(was_training)
    return int(size)


# ----------------------------------------------------------------------------------------------- method
@METHODS.register()
class PgFdd(Method):
    """PG-FDD with every part on: fusion, bi-level fair loss, LDAM demographic loss, SAM."""

    name = "pg-fdd"
    Config = PgFddConfig
    needs = Needs(paired=True, groups=True, manipulations=True)
    description = "PG-FDD: disentangled encoders, AdaIN fusion, bi-level fair loss, SAM"

    def __init__(self, config: PgFddConfig, info: MethodInfo) -> None:
        super().__init__(config, info)
        self.net = PgFddNet(config, info)
        self.register_buffer("margins", ldam_margins(info.group_counts, config.ldam_max_margin), persistent=False)
        self.optimizer = self.make_optimizer(self.net.parameters())
        self.sam = SAM(self.optimizer, model=self.net, rho=config.rho) if config.use_sam else None

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        z = self.net.detector_logits(images).float()
        return z[:, 1] if self.config.score == "z1" else z[:, 1] - z[:, 0]

    def update(self, batch: Batch) -> dict[str, Any]:
        logs: dict[str, torch.Tensor] = {}

        def compute_loss() -> torch.Tensor:
            terms = self.losses(batch)
            logs.update({k: v.detach() for k, v in terms.items()})
            c = self.config
            return (c.w_sha * terms["loss_sha"] + c.w_spe * terms["loss_spe"] + c.w_rec * terms["loss_rec"]
                    + c.w_con * terms["loss_con"] + c.w_dem * terms["loss_dem"] + c.w_fair * terms["loss_fair"])

        if self.sam is not None:
            loss, perturbed = self.sam.step(compute_loss)
            logs["sam_loss"] = perturbed
        else:
            self.optimizer.zero_grad(set_to_none=True)
            loss = compute_loss()
            loss.backward()
            self.optimizer.step()
            loss = loss.detach()
        # the terms logged are those of the last forward pass (the perturbed one under SAM)
        return {"loss": loss, **logs}

    def losses(self, batch: Batch) -> dict[str, torch.Tensor]:
        """Every loss term of one forward pass (unweighted)."""
        c = self.config
        images, label = batch.images, batch.label
        half = images.shape[0] // 2
        if half == 0 or images.shape[0] % 2:
            raise ValueError("pg-fdd needs paired batches: the first half real, the second half fake.")
        out = self.net(images)
        terms = {
            "loss_sha": F.cross_entropy(out["sha"].float(), label),
            "loss_spe": F.cross_entropy(out["spe"].float(), batch.manipulation),
            "loss_rec": self.reconstruction_loss(out, images, half),
            "loss_con": self.contrastive_loss(out, batch.manipulation, half),
            "loss_dem": (ldam_loss(out["dem"].float(), batch.group, self.margins, c.ldam_scale) if c.dem_loss
                         else torch.zeros((), device=images.device)),
        }
        per_sample = F.cross_entropy(out["detector"].float(), label, reduction="none")
        terms["loss_fair"] = self.fair_loss(per_sample, batch.group) if c.fair_loss else per_sample.mean()
        return terms

    def fair_loss(self, per_sample: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        """Inner CVaR_alpha_in within each group present; outer level over the groups per ``outer``."""
        c = self.config
        risk, present = grouped_cvar(per_sample, groups, c.alpha_in, self.info.num_groups)
        if c.outer == "max":
            return masked_max(risk, present)
        if c.outer == "cvar":
            return cvar(risk, c.alpha_out, mask=present)
        return smoothed_cvar(risk, c.alpha_out, mask=present, tau1=c.tau1, tau2=c.tau2,
                             float32_guard=c.outer == "official")

    def reconstruction_loss(self, out: dict[str, torch.Tensor], images: torch.Tensor, half: int) -> torch.Tensor:
        """Sum of four L1 errors: self (each image from its own codes) and cross (the forgery code of the
        other image of its pair with this image's content code; the target is the content's image)."""
        swap = torch.cat([torch.arange(half, 2 * half), torch.arange(0, half)]).to(images.device)
        forgery, content = out["forgery_code"], out["content_code"]
        recon = self.net.decoder(torch.cat([forgery, forgery[swap]]), torch.cat([content, content]))
        errors = (recon.float() - torch.cat([images, images]).float()).abs().mean(dim=(1, 2, 3))  # (2N,)
        return errors.view(4, half).mean(dim=1).sum()  # self real, self fake, cross real, cross fake

    def contrastive_loss(self, out: dict[str, torch.Tensor], manipulation: torch.Tensor, half: int) -> torch.Tensor:
        return contrastive_loss(out["sha_feat"].float(), out["spe_feat"].float(), manipulation, half=half,
                                margin=self.config.triplet_margin)


def contrastive_loss(shared: torch.Tensor, specific: torch.Tensor, manipulation: torch.Tensor, *, half: int,
                     margin: float) -> torch.Tensor:
    """Four triplet hinge terms (mean of max(0, d(a, p) - d(a, n) + margin), Euclidean d) on the pooled
    domain-agnostic (``shared``) and domain-specific (``specific``) head features of a paired batch.

    Partners are drawn as the authors' code draws them. Domain-agnostic: one random permutation of the
    real half and one of the fake half; a real anchor's positive and negative are the permuted real and
    fake at its position, and a fake anchor's are the permuted fake and real. Domain-specific: one random
    permutation within each manipulation label (reals are label 0) over the whole batch; the positive is
    the anchor's permuted row and the negative the permuted row at the same position in the other half. A
    permutation can leave a row in place, so a positive is the anchor itself about 1/(its class size) of
    the time (the term then pushes the anchor away from its negative only).
    """
    device = manipulation.device
    real, fake = torch.arange(half, device=device), torch.arange(half, 2 * half, device=device)
    real_partner = real[torch.randperm(half, device=device)]
    fake_partner = fake[torch.randperm(half, device=device)]
    total = _triplet(shared, real, real_partner, fake_partner, margin)
    total = total + _triplet(shared, fake, fake_partner, real_partner, margin)
    same_label = within_label_permutation(manipulation)
    total = total + _triplet(specific, real, same_label[real], same_label[fake], margin)
    return total + _triplet(specific, fake, same_label[fake], same_label[real], margin)


def _triplet(features: torch.Tensor, anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor,
             margin: float) -> torch.Tensor:
    a, p, n = features[anchor], features[positive], features[negative]
    return F.relu((a - p).norm(dim=1) - (a - n).norm(dim=1) + margin).mean()


def within_label_permutation(labels: torch.Tensor) -> torch.Tensor:
    """A uniformly random permutation of the rows that sends each row to a row with the same label (itself
    included), on the device: row ``i`` goes to ``result[i]``.

    Listing the rows grouped by label once in row order and once in random order puts each label's rows
    in the same block of positions both times; pairing the two lists position by position is the
    permutation.
    """
    shuffled = torch.randperm(labels.shape[0], device=labels.device)
    random_order = shuffled[torch.argsort(labels[shuffled], stable=True)]
    row_order = torch.argsort(labels, stable=True)
    return torch.empty_like(row_order).index_put_((row_order,), random_order)


# ----------------------------------------------------------------------------------------------- ablations
def _ablation(name: str, description: str, **changes: Any) -> type[PgFdd]:
    """Register a PG-FDD variant (tagged ``ablation``) whose Config defaults differ by ``changes``."""
    parent = {f.name: f for f in dataclasses.fields(PgFddConfig)}
    namespace: dict[str, Any] = {"__annotations__": {k: PgFddConfig.__annotations__[k] for k in changes}}
    for key, value in changes.items():
        namespace[key] = dataclasses.field(default=value, metadata=parent[key].metadata)
    config_cls = dataclass(type(f"{name}-config", (PgFddConfig,), namespace))
    cls = type(name, (PgFdd,), {"name": name, "Config": config_cls, "description": description,
                                "__module__": __name__, "__doc__": description})
    METHODS.add(name, cls, tags=["ablation"])
    return cls


PgFddNoSam = _ablation("pg-fdd-nosam", "PG-FDD without SAM (plain optimiser steps)", use_sam=False)
PgFddNoFusion = _ablation("pg-fdd-nofusion", "PG-FDD classifying the domain-agnostic forgery feature (no AdaIN "
                          "fusion); the fair loss trains that head", fusion=False)
PgFddNoFair = _ablation("pg-fdd-nofair", "PG-FDD with plain CE instead of the bi-level fair loss", fair_loss=False)
PgFddNoDem = _ablation("pg-fdd-nodem", "PG-FDD without the LDAM demographic loss", dem_loss=False)
