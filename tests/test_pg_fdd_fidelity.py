"""PG-FDD against the authors' public code (Purdue-M2/Fairness-Generalization), with every reference written
out here from the facts of that code: its encoder reads bn4 before the last ReLU, its outer level is
scipy's fminbound under a float32 overflow guard, its contrastive partners come from permutations, its
decoder aligns corners and leaves the forgery stream alone in the last stage. And the `official` profile.
"""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_info
from scipy.optimize import fminbound
from test_update_benchmark import default_batch

from bench.__main__ import main
from bench.backbones import BackboneClassifier, drop_final_activation
from bench.config import build_config, resolve_method_config
from bench.errors import ConfigError
from bench.losses import smoothed_cvar
from bench.method import METHODS, MethodInfo
from methods.pg_fdd import ConditionalDecoder, Encoder, adain, contrastive_loss, within_label_permutation


def method_config(name: str = "pg-fdd", *, preset: str = "quick", **sets):
    run = build_config(preset=preset, sets=[f"{name}.{k}={v}" for k, v in sets.items()])
    return resolve_method_config(METHODS.get(name).Config, run, name)


# ------------------------------------------------------------------------------------------------ encoder
def test_encoder_reads_bn4_of_legacy_xception_before_the_final_relu() -> None:
    torch.manual_seed(0)
    encoder = Encoder(method_config(backbone="legacy_xception"), image_size=64)
    seen: dict[str, torch.Tensor] = {}
    encoder.backbone.model.bn4.register_forward_hook(lambda m, i, out: seen.update(bn4=out.clone()))
    encoder.adjust.register_forward_pre_hook(lambda m, args: seen.update(adjust_in=args[0].clone()))
    encoder.train()
    encoder(torch.randn(2, 3, 64, 64))
    assert torch.equal(seen["adjust_in"], seen["bn4"])
    assert (seen["bn4"] < 0).float().mean() > 0.3  # so relu(bn4) would not pass for it
    assert encoder.dropped_activation == "model.act4"


def test_the_baseline_keeps_the_final_relu() -> None:
    torch.manual_seed(0)
    net = BackboneClassifier(method_config("xception", backbone="legacy_xception"))
    seen: dict[str, torch.Tensor] = {}
    net.backbone.model.bn4.register_forward_hook(lambda m, i, out: seen.update(bn4=out.clone()))
    out = net.backbone(torch.randn(2, 3, 64, 64))
    assert isinstance(net.backbone.model.act4, torch.nn.ReLU)
    assert torch.equal(out, F.relu(seen["bn4"]))


def test_drop_final_activation_on_small_networks() -> None:
    torch.manual_seed(0)
    conv_bn = [torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4)]
    ends_in_relu = torch.nn.Sequential(*conv_bn, torch.nn.ReLU(inplace=True), torch.nn.Dropout(0.5))
    images = torch.randn(3, 3, 8, 8)
    ends_in_relu.eval()
    before = torch.nn.Sequential(*conv_bn).eval()(images)
    assert drop_final_activation(ends_in_relu, image_size=8) == "2"
    assert torch.equal(ends_in_relu(images), before) and (before < 0).any()
    shared = torch.nn.ReLU()  # used twice: replacing it would also remove the first use
    twice = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), shared, torch.nn.Conv2d(4, 4, 1), shared)
    ends_in_norm = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.ReLU(), torch.nn.BatchNorm2d(4))
    for net in (twice, ends_in_norm):
        assert drop_final_activation(net, image_size=8) is None
        assert not any(isinstance(m, torch.nn.Identity) for m in net.modules())


# ------------------------------------------------------------------------------------------- outer level
def public_code_outer(risks: np.ndarray, alpha: float = 0.5, tau1: float = 1e-3,
                      tau2: float = 1e-4) -> tuple[float, np.ndarray]:
    """The public code's outer level: scipy's fminbound over [min R - 1000, max R] of the smoothed objective
    evaluated in float32, which answers the largest float64 wherever exp((R - lambda)/tau1) overflows;
    then the objective at that lambda, differentiated with lambda fixed. Returns the value and d/dR."""
    r = torch.tensor(risks, dtype=torch.float32)

    def objective(lam: float) -> float:
        z = (r - lam) / tau1
        if torch.isinf(torch.exp(z)).any():
            return float(np.finfo(float).max)
        return lam + tau2 / (2 * alpha) * lam**2 + (tau1 * torch.log1p(torch.exp(z))).mean().item() / alpha

    lam = fminbound(objective, r.min().item() - 1000.0, r.max().item())
    r.requires_grad_(True)
    value = lam + tau2 / (2 * alpha) * lam**2 + (tau1 * torch.log1p(torch.exp((r - lam) / tau1))).mean() / alpha
    value.backward()
    return value.item(), r.grad.numpy()


@pytest.mark.parametrize("spread", [2.0, 0.05])
@pytest.mark.parametrize("seed", range(4))
def test_official_outer_equals_the_public_code_search(spread: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    risks = (1.0 + spread * rng.standard_normal(8)).astype(np.float32)
    expected, expected_grad = public_code_outer(risks)
    values = torch.tensor(risks, requires_grad=True)
    got = smoothed_cvar(values, 0.5, tau1=1e-3, tau2=1e-4, float32_guard=True)
    got.backward()
    assert got.item() == pytest.approx(expected, abs=1e-4)
    # fminbound stops within its tolerance (1e-5) of lambda; a weight moves by up to ~1e-3 per 1e-5
    assert np.allclose(values.grad.numpy(), expected_grad, atol=5e-3)


def test_official_outer_gives_the_worst_group_one_over_alpha_k_when_risks_are_spread() -> None:
    risks = torch.tensor([0.2, 3.0, 0.5, 1.1, 0.0, 0.7], requires_grad=True)
    mask = torch.tensor([True, True, True, True, False, True])  # five groups present
    smoothed_cvar(risks, 0.5, mask=mask, float32_guard=True).backward()
    assert risks.grad[1].item() == pytest.approx(1 / (0.5 * 5), rel=1e-4)  # max puts 1, CVaR_0.5 of 5 puts 0.4 on
    assert risks.grad[[0, 2, 3, 4, 5]].abs().max() < 1e-6                  # the worst and 0.1 on the 3rd worst
    plain = torch.tensor([0.2, 3.0, 0.5, 1.1, 0.7], requires_grad=True)
    smoothed_cvar(plain, 0.5).backward()
    assert plain.grad[3].item() == pytest.approx(1 / (0.5 * 5), abs=1e-3)  # the paper's objective: 2nd worst too


def test_official_outer_on_the_method() -> None:
    per_sample = torch.tensor([0.1, 4.0, 0.3, 0.5, 1.2, 0.2, 0.9, 0.4])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    method = METHODS.get("pg-fdd")(method_config(outer="official"), tiny_info())
    # CVaR_0.9 of two losses: a n = 1.8, so weights 1/1.8 on the larger and 0.8/1.8 on the smaller
    pairs = [per_sample[groups == g].sort(descending=True).values.numpy() for g in range(4)]
    risks = np.array([(big + 0.8 * small) / 1.8 for big, small in pairs])
    assert method.fair_loss(per_sample, groups).item() == pytest.approx(public_code_outer(risks)[0], abs=1e-4)


# ------------------------------------------------------------------------------------------- contrastive
def test_within_label_permutation_is_uniform_within_each_label() -> None:
    torch.manual_seed(0)
    labels = torch.tensor([0] * 8 + [1, 1, 1, 2, 2, 3, 4, 4])
    draws = torch.stack([within_label_permutation(labels) for _ in range(3000)])
    assert all(sorted(d.tolist()) == list(range(16)) for d in draws[:50])
    assert torch.equal(labels[draws], labels.expand_as(draws))
    # a row stays in place with probability 1/(its class size): 1/8 for the reals, 1/3, 1/2, 1, 1/2 for fakes
    sizes = torch.tensor([8] * 8 + [3, 3, 3, 2, 2, 1, 2, 2]).float()
    stays = (draws == torch.arange(16)).float().mean(dim=0)
    assert torch.allclose(stays, 1 / sizes, atol=0.03)
    # every arrangement of the three rows of label 1 equally often
    counts = np.unique(draws[:, 8:11].numpy(), axis=0, return_counts=True)[1]
    assert len(counts) == 6 and counts.min() > 400


def brute_force_expected_contrastive(shared: torch.Tensor, specific: torch.Tensor, manipulation: torch.Tensor,
                                     half: int, margin: float) -> float:
    """E[L_con] over the public code's random partners, by enumeration: a real anchor's domain-agnostic
    positive is any real and its negative any fake, uniformly and independently (a fake anchor's the other
    way round); a domain-specific positive is any row of the anchor's label (itself included) and the
    negative any row of the label of the row at the anchor's position in the other half."""
    rows = range(2 * half)

    def hinge(feat: torch.Tensor, a: int, p: int, n: int) -> float:
        return max(float((feat[a] - feat[p]).norm() - (feat[a] - feat[n]).norm()) + margin, 0.0)

    def mean_hinge(feat: torch.Tensor, anchors: range, positives, negatives) -> float:
        return float(np.mean([np.mean([hinge(feat, a, p, n) for p in positives(a) for n in negatives(a)])
                              for a in anchors]))

    reals, fakes = range(half), range(half, 2 * half)
    like = lambda i: [j for j in rows if manipulation[j] == manipulation[i]]  # noqa: E731
    other = lambda a: a + half if a < half else a - half  # noqa: E731
    return (mean_hinge(shared, reals, lambda a: reals, lambda a: fakes)
            + mean_hinge(shared, fakes, lambda a: fakes, lambda a: reals)
            + mean_hinge(specific, reals, like, lambda a: like(other(a)))
            + mean_hinge(specific, fakes, like, lambda a: like(other(a))))


def test_contrastive_loss_has_the_public_codes_expectation() -> None:
    g = torch.Generator().manual_seed(3)
    half = 6
    manipulation = torch.tensor([0] * half + [1, 1, 2, 2, 2, 3])
    shared, specific = torch.randn(2 * half, 5, generator=g), torch.randn(2 * half, 5, generator=g) * 1.5
    expected = brute_force_expected_contrastive(shared, specific, manipulation, half, 3.0)
    torch.manual_seed(0)
    draws = torch.stack([contrastive_loss(shared, specific, manipulation, half=half, margin=3.0)
                         for _ in range(3000)])
    standard_error = draws.std().item() / math.sqrt(len(draws))
    assert abs(draws.mean().item() - expected) < 4 * standard_error + 1e-3, (draws.mean().item(), expected)


# ---------------------------------------------------------------------------------------------- decoder
def reference_decoder_forward(decoder: ConditionalDecoder, forgery: torch.Tensor,
                              content: torch.Tensor) -> torch.Tensor:
    """The decoder as the public code's stages read, before the unused work was removed: both streams go
    through every stage (upsample x2 with corners aligned, dropout, the stage's double conv). Dropout masks
    come from the global generator in the same order, except the last stage's forgery stream's, which is
    never used and draws from a generator of its own."""
    spare = torch.Generator().manual_seed(12345)
    p = decoder.dropout

    def dropout(t: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand_like(t) if generator is None else torch.rand(t.shape, generator=generator).to(t)
        return t * (u >= p) / (1 - p)

    def up(t: torch.Tensor, **how) -> torch.Tensor:
        return F.interpolate(t, mode="bilinear", align_corners=True, **how)

    x, c = content, forgery
    for stage, conv in enumerate(decoder.convs, start=1):
        x = conv(dropout(up(adain(x, c), scale_factor=2)))
        c = conv(dropout(up(c, scale_factor=2), spare if stage == len(decoder.convs) else None))
    return torch.tanh(up(decoder.to_rgb(x), size=(decoder.image_size, decoder.image_size)))


@pytest.mark.parametrize(("feature_size", "image_size"), [(4, 32), (2, 64)])
def test_decoder_equals_the_reference_with_both_streams_in_every_stage(feature_size: int, image_size: int) -> None:
    torch.manual_seed(0)
    decoder = ConditionalDecoder(16, feature_size, image_size, dropout=0.3)
    assert decoder.stages == (1 if image_size == 32 else 3)
    forgery = torch.randn(4, 16, feature_size, feature_size, requires_grad=True)
    content = torch.randn(4, 16, feature_size, feature_size, requires_grad=True)
    results = []
    for forward in (decoder.forward, types.MethodType(reference_decoder_forward, decoder)):
        torch.manual_seed(1)
        decoder.zero_grad()
        forgery.grad = content.grad = None
        out = forward(forgery, content)
        (out * torch.linspace(-1, 1, out.numel()).view_as(out)).sum().backward()
        results.append([out.detach(), forgery.grad, content.grad] + [p.grad for p in decoder.parameters()])
    for got, expected in zip(*results, strict=True):  # float rounding only (x / 0.7 against x * (1 / 0.7))
        assert (got - expected).abs().max() <= 1e-5 * expected.abs().max() + 1e-7


def test_one_update_is_unchanged_by_the_decoder_savings() -> None:
    """The default preset's model and batch: one SAM update with the decoder as it is and with the
    reference decoder gives the same losses (at w and at the perturbed weights) and the same gradient
    handed to the base optimiser. (Not the same new weights: Adam's first step is lr * sign(gradient),
    which float rounding flips where a gradient is about 0.)"""
    info = MethodInfo(image_size=32, group_counts=(100,) * 8, num_manipulations=4, epochs=1, steps_per_epoch=1,
                      device=torch.device("cpu"))
    batch = default_batch(pairs=8)
    results = []
    for reference in (False, True):
        torch.manual_seed(0)
        method = METHODS.get("pg-fdd")(method_config(preset="default"), info).to(memory_format=torch.channels_last)
        if reference:
            method.net.decoder.forward = types.MethodType(reference_decoder_forward, method.net.decoder)
        method.train()
        logs = method.update(batch)
        results.append((logs, [p.grad.clone() for p in method.parameters()]))
    (logs, grads), (ref_logs, ref_grads) = results
    assert logs.keys() == ref_logs.keys()
    for key in logs:
        assert torch.allclose(torch.as_tensor(logs[key]), torch.as_tensor(ref_logs[key]), rtol=1e-5), key
    for got, expected in zip(grads, ref_grads, strict=True):
        assert (got - expected).abs().max() <= 1e-4 * expected.abs().max() + 1e-7


# ---------------------------------------------------------------------------------------------- profile
def test_official_profile_sets_the_public_codes_choices() -> None:
    official = method_config(profile="official")
    assert (official.outer, official.score) == ("official", "z1")
    assert (method_config().outer, method_config().score) == ("smoothed", "difference")
    assert method_config("pg-fdd-nosam", profile="official").outer == "official"
    assert method_config(profile="official", outer="official").score == "z1"
    with pytest.raises(ConfigError, match="profile=official sets outer"):
        method_config(profile="official", outer="max")


def test_print_config_shows_what_the_profile_set(capsys: pytest.CaptureFixture) -> None:
    assert main(["run", "--preset", "quick", "--print-config", "--methods", "pg-fdd",
                 "--set", "pg-fdd.profile=official"]) == 0
    out = capsys.readouterr().out
    section = out[out.index("[pg-fdd]"):]
    assert 'profile = "official"' in section and 'outer = "official"' in section and 'score = "z1"' in section


def test_official_profile_scores_by_z1() -> None:
    torch.manual_seed(0)
    method = METHODS.get("pg-fdd")(method_config(profile="official"), tiny_info()).eval()
    images = torch.randn(4, 3, 32, 32)
    assert torch.allclose(method(images), method.net.detector_logits(images)[:, 1])


def test_profile_conflicts_are_a_user_error(capsys: pytest.CaptureFixture) -> None:
    code = main(["run", "--preset", "quick", "--print-config", "--methods", "pg-fdd",
                 "--set", "pg-fdd.profile=official", "--set", "pg-fdd.score=difference"])
    assert code == 0  # score = difference is the default: the profile replaces it
    code = main(["run", "--preset", "quick", "--print-config", "--methods", "pg-fdd",
                 "--set", "pg-fdd.profile=official", "--set", "pg-fdd.outer=cvar"])
    assert code == 2 and "drop one of the two settings" in capsys.readouterr().err
