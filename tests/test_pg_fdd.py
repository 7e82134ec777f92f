"""PG-FDD's parts against their definitions: AdaIN, LDAM margins, the smoothed outer CVaR (against scipy),
the model's shapes for two sizes and two backbones, one update, and the paper-sized model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import easy_batch, tiny_info
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp

from bench.config import build_config, resolve_method_config
from bench.losses import cvar, smoothed_cvar
from bench.method import METHODS, MethodInfo
from methods.pg_fdd import adain, ldam_loss, ldam_margins


def build(name: str = "pg-fdd", *, preset: str = "quick", info: MethodInfo | None = None, **sets):
    run = build_config(preset=preset, sets=[f"{name}.{k}={v}" for k, v in sets.items()])
    cls = METHODS.get(name)
    return cls(resolve_method_config(cls.Config, run, name), info or tiny_info())


def test_adain_gives_each_sample_and_channel_the_style_statistics() -> None:
    g = torch.Generator().manual_seed(0)
    content = torch.randn(3, 5, 4, 6, generator=g) * 2 + 1
    style = torch.randn(3, 5, 4, 6, generator=g) * 0.5 - 3
    out = adain(content, style, eps=0.0)
    assert torch.allclose(out.mean(dim=(2, 3)), style.mean(dim=(2, 3)), atol=1e-5)
    assert torch.allclose(out.std(dim=(2, 3)), style.std(dim=(2, 3)), atol=1e-5)  # unbiased, as defined
    with_eps = adain(content, style)  # sigma = sqrt(var + 1e-5): the std moves by well under a percent
    assert torch.allclose(with_eps.std(dim=(2, 3)), style.std(dim=(2, 3)), rtol=1e-3)


def test_ldam_margins_follow_the_formula() -> None:
    counts = (1000, 16, 81, 0, 10000, 256, 1, 625)
    expected = np.array([max(n, 1) ** -0.25 for n in counts])
    expected = 0.5 * expected / expected.max()
    assert np.allclose(ldam_margins(counts, 0.5).numpy(), expected)
    assert ldam_margins(counts, 0.5).max().item() == pytest.approx(0.5)  # the rarest groups


def test_ldam_loss_subtracts_the_margin_of_the_true_group_and_skips_unknown() -> None:
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 0.0, 3.0], [9.0, 9.0, 9.0]])
    target = torch.tensor([1, 2, -1])
    margins = torch.tensor([0.1, 0.2, 0.4])
    shifted = torch.tensor([[1.0, 1.8, 0.5], [0.0, 0.0, 2.6]]) * 30
    expected = np.mean([logsumexp(row) - row[t] for row, t in zip(shifted.numpy(), (1, 2), strict=True)])
    assert ldam_loss(logits, target, margins, 30.0).item() == pytest.approx(expected, rel=1e-5)
    assert ldam_loss(logits, torch.full((3,), -1), margins, 30.0).item() == 0.0


def scipy_smoothed(values: np.ndarray, alpha: float, tau1: float, tau2: float) -> float:
    k = len(values)

    def objective(lam: float) -> float:
        return lam + tau2 / (2 * alpha) * lam**2 + tau1 * np.logaddexp(0, (values - lam) / tau1).sum() / (alpha * k)

    result = minimize_scalar(objective, bracket=(values.min() - 1, values.max() + 1), tol=1e-12)
    return float(result.fun)


@pytest.mark.parametrize("seed", range(5))
def test_smoothed_outer_equals_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.gamma(2.0, 0.4, size=rng.integers(1, 9))
    for alpha, tau1, tau2 in ((0.5, 1e-3, 1e-4), (0.3, 0.05, 0.01), (1.0, 0.2, 0.0)):
        got = smoothed_cvar(torch.tensor(values), alpha, tau1=tau1, tau2=tau2).item()
        assert got == pytest.approx(scipy_smoothed(values, alpha, tau1, tau2), abs=1e-6)


def test_smoothed_outer_tends_to_cvar_and_respects_the_mask() -> None:
    values = torch.tensor([0.9, 0.2, 1.7, 0.4, 1.1])
    exact = cvar(values, 0.5).item()
    gaps = [abs(smoothed_cvar(values, 0.5, tau1=t, tau2=t / 10).item() - exact) for t in (1e-1, 1e-2, 1e-3, 1e-5)]
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-4
    mask = torch.tensor([True, True, False, True, True])
    assert smoothed_cvar(values, 0.5, mask=mask, tau1=1e-6, tau2=0).item() == pytest.approx(
        cvar(values[mask], 0.5).item(), abs=1e-5)


def test_smoothed_outer_gradient_weights_the_worse_groups() -> None:
    values = torch.tensor([0.9, 0.2, 1.7, 0.4], requires_grad=True)
    smoothed_cvar(values, 0.5).backward()
    # CVaR_0.5 of four groups: the two worst (1.7 and 0.9) share the weight 1/(a k) = 0.5 each
    assert torch.allclose(values.grad, torch.tensor([0.5, 0.0, 0.5, 0.0]), atol=1e-3)


def test_outer_options_on_the_method() -> None:
    per_sample = torch.tensor([0.1, 2.0, 0.3, 0.5, 1.2, 0.2, 0.9, 0.4])
    groups = torch.tensor([0, 0, 1, 1, 2, 2, 3, -1])
    inner = torch.tensor([cvar(per_sample[groups == g], 0.9).item() for g in range(4)])
    assert build(outer="max").fair_loss(per_sample, groups).item() == pytest.approx(inner.max().item())
    assert build(outer="cvar").fair_loss(per_sample, groups).item() == pytest.approx(cvar(inner, 0.5).item())
    smoothed = build().fair_loss(per_sample, groups).item()
    assert smoothed == pytest.approx(scipy_smoothed(inner.double().numpy(), 0.5, 1e-3, 1e-4), abs=1e-6)


@pytest.mark.parametrize(("backbone", "size"), [("bench-small", 32), ("bench-small", 64), ("resnet10t", 32),
                                                 ("resnet10t", 64)])
def test_forward_shapes(backbone: str, size: int) -> None:
    info = MethodInfo(image_size=size, group_counts=(5,) * 8, num_manipulations=4, epochs=1, steps_per_epoch=1,
                      device=torch.device("cpu"))
    method = build(info=info, backbone=backbone)
    images = torch.randn(4, 3, size, size)
    out = method.net(images)
    feat = method.net.forgery_encoder.dim // 2
    assert out["detector"].shape == out["sha"].shape == (4, 2)
    assert out["spe"].shape == (4, 5) and out["dem"].shape == (4, 8)
    assert out["forgery_code"].shape[1] == out["content_code"].shape[1] == 2 * feat
    recon = method.net.decoder(out["forgery_code"], out["content_code"])
    assert recon.shape == (4, 3, size, size) and recon.abs().max() <= 1
    method.eval()
    assert method(images).shape == (4,)


def test_one_update_logs_every_term_and_training_lowers_the_loss() -> None:
    torch.manual_seed(0)
    method = build()
    batch = easy_batch()
    first = method.update(batch)
    assert set(first) == {"loss", "loss_sha", "loss_spe", "loss_rec", "loss_con", "loss_dem", "loss_fair",
                          "sam_loss"}
    assert all(torch.isfinite(torch.as_tensor(v)) for v in first.values())
    losses = [float(method.update(batch)["loss"]) for _ in range(15)]
    assert np.mean(losses[-3:]) < float(first["loss"])


def test_ablations_switch_their_part_off() -> None:
    assert build("pg-fdd-nosam").sam is None and build().sam is not None
    assert build("pg-fdd-nofusion").net.head_fused is None
    assert not build("pg-fdd-nofair").config.fair_loss and not build("pg-fdd-nodem").config.dem_loss
    assert "loss_fair" in build("pg-fdd-nofair").update(easy_batch())
    assert set(METHODS.select("ablations")) == {"pg-fdd-nosam", "pg-fdd-nofusion", "pg-fdd-nofair", "pg-fdd-nodem"}
    assert "pg-fdd-nosam" not in METHODS.select("all")


def test_z1_score_option() -> None:
    torch.manual_seed(0)
    a = build()
    b = build(score="z1")
    b.load_state_dict(a.state_dict())
    a.eval()
    b.eval()
    images = easy_batch().images
    z = a.net.detector_logits(images)
    assert torch.allclose(a(images), z[:, 1] - z[:, 0]) and torch.allclose(b(images), z[:, 1])


def test_paper_preset_model_has_three_xception_encoders() -> None:
    info = MethodInfo(image_size=256, group_counts=(100,) * 8, num_manipulations=5, epochs=1, steps_per_epoch=1,
                      device=torch.device("cpu"))
    method = build(preset="paper", info=info)
    encoders = [method.net.forgery_encoder, method.net.content_encoder, method.net.demographic_encoder]
    assert all(type(e.backbone.model).__name__ == "Xception" for e in encoders)
    assert len({id(e.backbone) for e in encoders}) == 3  # no weight sharing
    assert all(e.dim == 512 for e in encoders) and method.net.decoder.stages == 3
    params = sum(p.numel() for p in method.parameters())
    assert 3 * 20e6 < params < 3 * 25e6 + 15e6, params
