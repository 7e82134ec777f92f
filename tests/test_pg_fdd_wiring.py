"""PG-FDD's wiring by hand, on the quick-sized model with its dropouts off: what the detector classifies, which
image each reconstruction is compared with, which samples the triplets pair, how the terms are weighted,
and what `pg-fdd-nofair` trains the detector with. The expected values come from the paper's formulas
(docs/METHODS.md) written out here, from the network's own intermediate tensors caught with hooks."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from helpers import easy_batch
from test_pg_fdd import build

import methods.pg_fdd

NO_DROPOUT = {"logit_dropout": 0.0, "decoder_dropout": 0.0}


def paper_adain(content: torch.Tensor, style: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """sigma(style) * (content - mu(content)) / sigma(content) + mu(style), per sample and channel over the
    spatial positions, sigma = sqrt(unbiased variance + eps)."""
    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x.mean(dim=(2, 3), keepdim=True), (x.var(dim=(2, 3), unbiased=True, keepdim=True) + eps).sqrt()

    (mu_c, sd_c), (mu_s, sd_s) = stats(content), stats(style)
    return sd_s * (content - mu_c) / sd_c + mu_s


def outputs_of(net: torch.nn.Module, names: list[str]) -> tuple[dict[str, torch.Tensor], list]:
    """Hooks that keep each named submodule's output (and the fused head's input) of the next pass."""
    caught: dict[str, torch.Tensor] = {}
    hooks = [getattr(net, n).register_forward_hook(lambda m, i, o, n=n: caught.__setitem__(n, o)) for n in names]
    if net.head_fused is not None:
        hooks.append(net.head_fused.register_forward_pre_hook(lambda m, i: caught.__setitem__("fused_in", i[0])))
    return caught, hooks


def test_the_detector_classifies_the_demographic_feature_restyled_by_the_forgery_feature() -> None:
    torch.manual_seed(0)
    method = build(**NO_DROPOUT)
    images = easy_batch().images
    caught, hooks = outputs_of(method.net, ["p_sha", "p_spe", "p_dem", "demographic_encoder", "content_encoder"])
    with torch.no_grad():
        out = method.net(images)
    f_a, f_d = caught["p_sha"], caught["p_dem"]
    assert not torch.allclose(paper_adain(f_d, f_a), paper_adain(f_a, f_d), atol=1e-3)  # the order matters here
    assert torch.allclose(caught["fused_in"], paper_adain(f_d, f_a), atol=1e-5)
    assert torch.allclose(out["detector"], method.net.head_fused(paper_adain(f_d, f_a))[0], atol=1e-5)
    assert torch.allclose(out["forgery_code"], torch.cat([caught["p_spe"], f_a], dim=1))
    # z_c = AdaIN(E_d(x), style E_c(x))
    assert torch.allclose(out["content_code"], paper_adain(caught["demographic_encoder"], caught["content_encoder"]),
                          atol=1e-5)

    # what is scored at test time is the same head on the same fusion: fake-logit z1 - z0
    method.eval()
    with torch.no_grad():
        scored = method(images)
    z = method.net.head_fused(paper_adain(caught["p_dem"], caught["p_sha"]))[0]
    assert torch.allclose(scored, z[:, 1] - z[:, 0], atol=1e-5)
    for hook in hooks:
        hook.remove()


def test_each_reconstruction_is_compared_with_the_image_whose_content_code_it_used() -> None:
    torch.manual_seed(1)
    method = build(**NO_DROPOUT)
    batch = easy_batch(pairs=4)
    half = 4
    # reals near -0.8 and fakes near 0.3, so that a wrong target shows in the loss of an untrained decoder
    offset = torch.cat([torch.full((half,), -0.8), torch.full((half,), 0.3)])[:, None, None, None]
    images = batch.images * 0.1 + offset
    batch = dataclasses.replace(batch, images=images)
    real, fake = torch.arange(half), torch.arange(half, 2 * half)
    with torch.no_grad():
        out = method.net(images)
        z_f, z_c, decoder = out["forgery_code"], out["content_code"], method.net.decoder

        def l1(forgery: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
            """Mean L1 of decoder(forgery code, content code) against the content's image."""
            return (decoder(z_f[forgery], z_c[content]) - images[content]).abs().mean()

        expected = l1(real, real) + l1(fake, fake) + l1(fake, real) + l1(real, fake)
        wrong = l1(real, real) + l1(fake, fake) + (decoder(z_f[fake], z_c[real]) - images[fake]).abs().mean() \
            + (decoder(z_f[real], z_c[fake]) - images[real]).abs().mean()
        got = method.losses(batch)["loss_rec"]
    assert abs(float(expected) - float(wrong)) > 1e-3
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


def test_triplets_pair_the_right_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """Permutations fixed to the reversal: a real anchor i's partners are real h-1-i (positive) and fake
    h-1-i (negative); a fake anchor's the other way round. The domain-specific features are one point per
    manipulation label, so whichever row of its label is drawn, a positive is at distance 0 and a negative
    (from the other half) at the distance between the two labels' points."""
    monkeypatch.setattr(methods.pg_fdd.torch, "randperm",
                        lambda n, device=None, **kw: torch.arange(n - 1, -1, -1, device=device))
    half, margin = 4, 3.0
    g = torch.Generator().manual_seed(2)
    shared = torch.randn(2 * half, 6, generator=g)
    manipulation = torch.tensor([0, 0, 0, 0, 1, 2, 1, 2])
    points = torch.tensor([[0.0, 0, 0, 0, 0, 0], [0.5, 0, 0, 0, 0, 0], [0, 2.0, 0, 0, 0, 0]])
    specific = points[manipulation]
    method = build(**NO_DROPOUT)
    got = method.contrastive_loss({"sha_feat": shared, "spe_feat": specific}, manipulation, half)

    def hinge(anchor: torch.Tensor, positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
        return F.relu((anchor - positive).norm(dim=1) - (anchor - negative).norm(dim=1) + margin).mean()

    real, fake = torch.arange(half), torch.arange(half, 2 * half)
    flipped_real, flipped_fake = real.flip(0), fake.flip(0)
    expected = hinge(shared[real], shared[flipped_real], shared[flipped_fake])
    expected = expected + hinge(shared[fake], shared[flipped_fake], shared[flipped_real])
    to_label = (specific[fake] - points[0]).norm(dim=1)  # real anchor i vs a fake of fake i's label, and back
    expected = expected + 2 * F.relu(margin - to_label).mean()
    assert float(got) == pytest.approx(float(expected), rel=1e-5)
    swapped = method.contrastive_loss({"sha_feat": specific, "spe_feat": shared}, manipulation, half)
    assert abs(float(swapped) - float(expected)) > 1e-3


@pytest.mark.parametrize("name", ["pg-fdd-nosam", "pg-fdd"])
def test_the_total_is_the_configured_weights_times_the_terms(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    weights = {"w_sha": 1.5, "w_spe": 0.2, "w_rec": 0.7, "w_con": 0.11, "w_dem": 0.3, "w_fair": 2.5}
    terms = {"loss_sha": 1.0, "loss_spe": 2.0, "loss_rec": 3.0, "loss_con": 5.0, "loss_dem": 7.0, "loss_fair": 11.0}
    torch.manual_seed(3)
    method = build(name, **NO_DROPOUT, **weights)
    param = next(method.net.parameters())
    scale = float(param.detach().abs().sum())

    def fixed_terms(batch) -> dict[str, torch.Tensor]:
        s = param.abs().sum()
        return {k: v * s for k, v in terms.items()}

    monkeypatch.setattr(method, "losses", fixed_terms)
    loss = float(method.update(easy_batch())["loss"])
    expected = scale * sum(weights["w" + k[4:]] * v for k, v in terms.items())
    assert loss == pytest.approx(expected, rel=1e-5)


def test_each_term_is_its_formula_and_nofair_trains_the_detector_with_the_mean_ce() -> None:
    batch = easy_batch()
    for name, outer in (("pg-fdd", "cvar"), ("pg-fdd-nofair", "cvar")):
        torch.manual_seed(4)
        method = build(name, outer=outer, **NO_DROPOUT)
        with torch.no_grad():
            out = method.net(batch.images)
            got = method.losses(batch)
        y, m, g = batch.label, batch.manipulation, batch.group
        assert float(got["loss_sha"]) == pytest.approx(float(F.cross_entropy(out["sha"], y)), rel=1e-5)
        assert float(got["loss_spe"]) == pytest.approx(float(F.cross_entropy(out["spe"], m)), rel=1e-5)
        # LDAM: margin 0.5 n_g^(-1/4) / max_k n_k^(-1/4) off the true group's logit, scale 30, CE
        counts = torch.tensor(method.info.group_counts, dtype=torch.float32)
        delta = 0.5 * counts.pow(-0.25) / counts.pow(-0.25).max()
        shifted = out["dem"] - F.one_hot(g, out["dem"].shape[1]) * delta[g, None]
        assert float(got["loss_dem"]) == pytest.approx(float(F.cross_entropy(30 * shifted, g)), rel=1e-4)
        per_sample = F.cross_entropy(out["detector"], y, reduction="none")
        if name == "pg-fdd-nofair":
            assert float(got["loss_fair"]) == pytest.approx(float(per_sample.mean()), rel=1e-5)
        else:  # CVaR_0.9 within each group present, CVaR_0.5 over them, by brute force over lambda
            risks = torch.stack([brute_cvar(per_sample[g == k], 0.9) for k in g.unique()])
            assert float(got["loss_fair"]) == pytest.approx(float(brute_cvar(risks, 0.5)), rel=1e-4)
            assert float(got["loss_fair"]) != pytest.approx(float(per_sample.mean()), rel=1e-3)


def brute_cvar(values: torch.Tensor, alpha: float) -> torch.Tensor:
    """min over lambda of lambda + 1/(alpha n) sum max(v - lambda, 0); the minimum is at one of the values."""
    v = values.double()
    return min(lam + F.relu(v - lam).sum() / (alpha * len(v)) for lam in v)
