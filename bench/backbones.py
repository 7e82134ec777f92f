"""Backbones: any timm model by name, plus small CNNs sized for the synthetic benchmark on a CPU.

Every backbone maps images (N, 3, H, W) to a feature map (N, C, h, w) and exposes ``num_features`` (C),
so a method can pool it (the baseline's `BackboneClassifier`, a building block any method may use) or
decode from it (PG-FDD). `drop_final_activation` gives a method the map before the backbone's last
activation instead (PG-FDD's encoders, like the authors' Xception, read the last BatchNorm's output).
Nothing is downloaded: pretrained weights come only from a file the user names.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError


def _conv_bn_relu(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


class SmallCNN(nn.Module):
    """A seven-layer CNN of output stride 8 (a 4 x 4 map at 32 px), ~0.3 M parameters at width 16.

    Stride 8 rather than timm's usual 32 keeps a spatial map at the synthetic sizes (AdaIN and the
    reconstruction decoder of PG-FDD need one), and a full-resolution first layer sees the
    high-frequency artifacts (checkerboards, block edges) the synthetic manipulations leave.
    Measured on 2 CPU threads: about 1,800 training images/s at 32 px, 470 at 64 px.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        w = width
        self.features = nn.Sequential(
            _conv_bn_relu(3, w, 1),
            _conv_bn_relu(w, 2 * w, 2), _conv_bn_relu(2 * w, 2 * w, 1),
            _conv_bn_relu(2 * w, 4 * w, 2), _conv_bn_relu(4 * w, 4 * w, 1),
            _conv_bn_relu(4 * w, 8 * w, 2), _conv_bn_relu(8 * w, 8 * w, 1),
        )
        self.num_features = 8 * w

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.features(images)  # (N, 8w, H/8, W/8)


class TimmFeatures(nn.Module):
    """A timm model cut before its pooling and classifier."""

    def __init__(self, name: str) -> None:
        super().__init__()
        import timm

        require_backbone(name)
        self.model = timm.create_model(name, pretrained=False, num_classes=0)
        self.num_features = int(self.model.num_features)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(images)


BENCH_BACKBONES = {
    "bench-small": lambda: SmallCNN(width=16),
    "bench-medium": lambda: SmallCNN(width=32),
}


def require_backbone(name: str, *, pretrained: str = "", key: str = "method.backbone") -> None:
    """Refuse an unknown backbone or a missing weights file before any work (``key`` names the setting)."""
    if name not in BENCH_BACKBONES:
        import timm

        if not timm.is_model(name):
            close = timm.list_models(f"*{name.split('_')[0]}*")[:8]
            hint = f" Similar timm models: {', '.join(close)}." if close else ""
            raise ConfigError(f"{key}: unknown backbone {name!r}: neither a bench backbone "
                              f"({', '.join(BENCH_BACKBONES)}) nor a timm model.{hint}")
    if pretrained and not Path(pretrained).is_file():
        raise ConfigError(f"Pretrained weights file {pretrained!r} does not exist; fix {key.rsplit('.', 1)[0]}"
                          f".pretrained.")


def create_backbone(name: str, *, pretrained: str = "") -> nn.Module:
    """Build backbone ``name``; load ``pretrained`` (a local weights file) when given."""
    backbone = BENCH_BACKBONES[name]() if name in BENCH_BACKBONES else TimmFeatures(name)
    if pretrained:
        load_pretrained(backbone, Path(pretrained))
    elif name not in BENCH_BACKBONES:
        print(f"WARNING: backbone {name!r} starts from random weights; name an ImageNet weights file with "
              f"--set method.pretrained=PATH to follow the paper.", file=sys.stderr)
    return backbone


# Activation modules a feature map can end in: torch's and timm's element-wise activations.
_ACTIVATIONS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
                nn.Mish, nn.Hardswish, nn.Hardtanh, nn.Softplus)
_NO_OPS = (nn.Identity, nn.Dropout)


def drop_final_activation(backbone: nn.Module, *, image_size: int) -> str | None:
    """Make ``backbone`` return its feature map before its final activation; return that activation's name.

    One forward pass at ``image_size`` (in eval mode, without gradients) records the order in which the
    leaf modules run. When the last one that does anything is an element-wise activation module, runs once,
    and produces the backbone's output, it is replaced by identity: the map then ends in what came before
    it (legacy_xception: bn4 instead of relu(bn4); ResNets: the last block's sum before its ReLU; timm's
    EfficientNets: bn2 without its activation; the bench CNNs: their last BatchNorm). Otherwise (an
    activation applied inside a functional call, or a map that ends in a norm, as in vision transformers)
    the backbone is left as it is and None is returned. Parameters and state-dict keys do not change.
    """
    calls: list[tuple[str, nn.Module, torch.Tensor]] = []
    handles = [module.register_forward_hook(lambda m, _i, out, name=name: calls.append((name, m, out)))
               for name, module in backbone.named_modules() if not list(module.children())]
    was_training = backbone.training
    try:
        backbone.eval()
        with torch.no_grad():
            result = backbone(torch.zeros(1, 3, image_size, image_size))
    finally:
        backbone.train(was_training)
        for handle in handles:
            handle.remove()
    acting = [(name, module, out) for name, module, out in calls if not isinstance(module, _NO_OPS)]
    if not acting:
        return None
    name, module, out = acting[-1]
    runs = sum(m is module for _, m, _ in calls)
    same_output = isinstance(out, torch.Tensor) and out.shape == result.shape and out.data_ptr() == result.data_ptr()
    if not isinstance(module, _ACTIVATIONS + _timm_activations()) or runs != 1 or not same_output:
        return None
    backbone.set_submodule(name, nn.Identity())
    return name


def _timm_activations() -> tuple[type, ...]:
    """timm's own activation classes (GELU, Swish, HardSwish, ...), when timm is installed."""
    try:
        from timm.layers import activations
    except ImportError:
        return ()
    return tuple(v for v in vars(activations).values() if isinstance(v, type) and issubclass(v, nn.Module))


def load_pretrained(backbone: nn.Module, path: Path) -> None:
    """Load a state dict from ``path`` into ``backbone``, ignoring classifier weights.

    Understands the widely shared Xception file (xception-b5690688.pth, Cadene's naming): its pointwise
    convolution weights are 2-D and get two trailing unit dimensions, and its ``last_linear``/``fc``
    classifier is dropped. Any other missing or unexpected key is an error, so a wrong file is noticed.
    """
    if not path.is_file():
        raise ConfigError(f"Pretrained weights file {str(path)!r} does not exist; fix method.pretrained.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise ConfigError(f"Cannot read pretrained weights {str(path)!r}: {exc}") from None
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    target = backbone.model if isinstance(backbone, TimmFeatures) else backbone
    own = target.state_dict()
    mapped = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith(("fc.", "last_linear.", "classifier.", "head.")):
            continue
        if key in own and value.dim() == 2 and own[key].dim() == 4:
            value = value[:, :, None, None]
        mapped[key] = value
    missing, unexpected = target.load_state_dict(mapped, strict=False)
    missing = [k for k in missing if not k.startswith(("fc.", "classifier.", "head."))]
    if missing or unexpected:
        raise ConfigError(f"Pretrained weights {str(path)!r} do not fit backbone: {len(missing)} missing "
                          f"(e.g. {missing[:3]}), {len(unexpected)} unexpected (e.g. {unexpected[:3]}) keys.")


class BackboneClassifier(nn.Module):
    """Backbone feature map -> ReLU -> global average pool -> Linear(C, 1): one fake-logit per image."""

    def __init__(self, config: Any) -> None:  # a MethodConfig: its backbone and pretrained settings
        super().__init__()
        self.backbone = create_backbone(config.backbone, pretrained=config.pretrained)
        self.head = nn.Linear(self.backbone.num_features, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = F.relu(self.backbone(images))  # (N, C, h, w)
        return self.head(features.mean(dim=(2, 3))).squeeze(1)  # (N,)

    def pooled_features(self, images: torch.Tensor) -> torch.Tensor:
        """The pooled features (N, C) that ``head`` reads, for methods that attach more heads to them."""
        return F.relu(self.backbone(images)).mean(dim=(2, 3))
