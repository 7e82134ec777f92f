"""Every method's own settings reach its training step: for each registered method, changing each of its own
config fields changes what two `update()` calls from the same weights on a fixed batch give (the losses or
the weights after them), or what `forward` scores; a field that cannot act there is listed with the reason.
DAG-FDD and DAW-FDD at non-default alphas against a brute-force CVaR; SAM's step against the plain one."""

from __future__ import annotations

import dataclasses
import functools

import pytest
import torch
import torch.nn.functional as F
from helpers import easy_batch
from test_pg_fdd import build
from test_pg_fdd_wiring import brute_cvar

from bench.config import MethodConfig
from bench.method import METHODS

PG_FDD = {"use_sam": False, "rho": 0.2, "fusion": False, "fair_loss": False, "dem_loss": False,
          "outer": ["cvar", "max"], "alpha_in": 0.6, "alpha_out": 0.3, "tau1": 0.1, "tau2": 0.5,
          "ldam_max_margin": 0.2, "ldam_scale": 5.0, "triplet_margin": 0.5, "logit_dropout": 0.5,
          "decoder_dropout": 0.6, "encoder_dim": 32, "w_sha": 0.5, "w_spe": 0.5, "w_rec": 0.9, "w_con": 0.5,
          "w_dem": 0.5, "w_fair": 0.4}
CHANGES: dict[str, dict[str, object]] = {
    "xception-sam": {"rho": 0.2},
    "dag-fdd": {"alpha": 0.3},
    "daw-fdd": {"alpha_in": 0.6, "alpha_out": 0.3},
    "daw-fdd-lb": {"alpha_in": 0.6, "alpha_out": 0.3},
    "eo-reg": {"mu": 3.0},
    "group-dro": {"eta": 0.5, "adjustment": 1.0},
    "adv-debias": {"lambda_max": 0.3, "gamma": 2.0, "adversary_hidden": 16},
    "reweight": {"target": "independent"},
    "pg-fdd": PG_FDD,
}
SCORED = {"pg-fdd": {"score": "z1", "profile": "official"}}  # settings of the score, not of the step
# outer="official" equals the smoothed CVaR unless the group risks are spread (docs/METHODS.md): an untrained
# model's are not, so it is checked on spread losses (test_every_outer_level_gives_its_own_loss).
OUTER = ("smoothed", "official", "cvar", "max")
PAIRS = {"daw-fdd-lb": 16}  # 8 pairs put one sample in each (group x label) cell: every alpha_in agrees there
CANNOT = {  # method -> field -> why update() cannot show it
    "swad": dict.fromkeys(("n_converge", "n_tolerance", "tolerance_ratio", "eval_every"),
                          "acts in after_step/finish_training on the validation loss, not in update() "
                          "(tests/test_representation_family.py drives them)"),
}
# The ablations are PG-FDD with one default changed: the same fields, checked on pg-fdd above, where each
# ablation's own switch is one of the rows. pg-fdd-nosam's rho is SAM's radius, which it does not use.
ABLATIONS = ("pg-fdd-nosam", "pg-fdd-nofusion", "pg-fdd-nofair", "pg-fdd-nodem")
BASE = {f.name for f in dataclasses.fields(MethodConfig)}


def own_fields(name: str) -> set[str]:
    return {f.name for f in dataclasses.fields(METHODS.get(name).Config)} - BASE


def cases() -> list[tuple[str, str, object]]:
    out = []
    for name, fields in CHANGES.items():
        for field, values in fields.items():
            out += [(name, field, v) for v in (values if isinstance(values, list) else [values])]
    return out


@functools.cache
def two_steps(name: str, **sets: object) -> tuple[list[float], torch.Tensor]:
    """Losses of two updates on one batch from the seed-0 weights, and the weights after them (two, so that
    adv-debias's schedule is past its zero at the start)."""
    torch.manual_seed(0)
    method = build(name, **sets)
    torch.manual_seed(1)
    batch = easy_batch(pairs=PAIRS.get(name, 8))
    losses = [float(method.update(batch)["loss"]) for _ in range(2)]
    return losses, torch.cat([p.detach().flatten() for p in method.parameters()])


@pytest.fixture(scope="module", autouse=True)
def _fresh_steps():
    """No results from another session of this process (a mutation tester forks sessions from one process)."""
    two_steps.cache_clear()
    yield
    two_steps.cache_clear()


def differs(a: tuple[list[float], torch.Tensor], b: tuple[list[float], torch.Tensor]) -> bool:
    return a[0] != b[0] or a[1].shape != b[1].shape or not torch.equal(a[1], b[1])


def test_every_own_field_is_checked_or_explained() -> None:
    for name in METHODS.names():
        listed = set(CHANGES.get(name, {})) | set(SCORED.get(name, {})) | set(CANNOT.get(name, {}))
        if name in ABLATIONS:
            listed = set(CHANGES["pg-fdd"]) | set(SCORED["pg-fdd"])
        assert own_fields(name) == listed, name


@pytest.mark.parametrize("name", sorted(CHANGES))
def test_the_step_is_reproducible(name: str) -> None:
    """The control: without a change, two runs give bit-identical steps (so a difference below is the field's)."""
    assert not differs(two_steps(name), two_steps.__wrapped__(name))


@pytest.mark.parametrize(("name", "field", "value"), cases())
def test_changing_a_field_changes_the_step(name: str, field: str, value: object) -> None:
    assert getattr(build(name).config, field) != value
    assert differs(two_steps(name), two_steps(name, **{field: value})), f"{name}.{field}={value} has no effect"


@pytest.mark.parametrize(("field", "value"), [("score", "z1"), ("profile", "official")])
def test_score_settings_change_the_score(field: str, value: str) -> None:
    torch.manual_seed(0)
    default = build("pg-fdd").eval()
    changed = build("pg-fdd", **{field: value}).eval()
    changed.load_state_dict(default.state_dict())
    images = easy_batch().images
    with torch.no_grad():
        assert not torch.allclose(default(images), changed(images))


def test_every_outer_level_gives_its_own_loss() -> None:
    groups = torch.arange(40) % 8
    per_sample = torch.rand(40, generator=torch.Generator().manual_seed(0)) * (1 + groups)  # spread risks
    values = [float(build("pg-fdd", outer=outer).fair_loss(per_sample, groups)) for outer in OUTER]
    assert len({round(v, 6) for v in values}) == len(OUTER), dict(zip(OUTER, values, strict=True))


def test_sam_step_differs_from_the_plain_step() -> None:
    assert differs(two_steps("xception"), two_steps("xception-sam"))
    assert differs(two_steps("pg-fdd"), two_steps("pg-fdd", use_sam=False))


@pytest.mark.parametrize("alpha", [0.3, 0.8])
def test_dag_fdd_at_non_default_alpha_is_the_batch_cvar(alpha: float) -> None:
    torch.manual_seed(0)
    method, batch = build("dag-fdd", alpha=alpha), easy_batch()
    logits = torch.randn(len(batch.label)) * 2
    per_sample = F.binary_cross_entropy_with_logits(logits, batch.label.float(), reduction="none")
    assert float(method.loss(logits, batch)) == pytest.approx(float(brute_cvar(per_sample, alpha)), rel=1e-5)


@pytest.mark.parametrize(("alpha_in", "alpha_out"), [(0.6, 0.3), (1.0, 0.75)])
def test_daw_fdd_at_non_default_alphas_is_the_cvar_of_group_cvars(alpha_in: float, alpha_out: float) -> None:
    torch.manual_seed(0)
    batch = easy_batch(pairs=12)
    batch = dataclasses.replace(batch, group=batch.group % 5)  # groups 5-7 absent: not part of the outer CVaR
    logits = torch.randn(len(batch.label)) * 2
    per_sample = F.binary_cross_entropy_with_logits(logits, batch.label.float(), reduction="none")
    for name, cell in (("daw-fdd", batch.group), ("daw-fdd-lb", batch.group * 2 + batch.label)):
        method = build(name, alpha_in=alpha_in, alpha_out=alpha_out)
        risks = torch.stack([brute_cvar(per_sample[cell == c], alpha_in) for c in cell.unique()])
        expected = brute_cvar(risks, alpha_out)
        assert float(method.loss(logits, batch)) == pytest.approx(float(expected), rel=1e-5), name
