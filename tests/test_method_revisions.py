"""Every built-in method's numbers are held at its code revision (`Method.revision`).

The revision is part of a job's identity, so a change to a method's code that alters its numbers must raise
it; otherwise `bench run` takes the finished jobs of the old code for the new one. Here each method takes
three steps on a fixed batch from fixed weights, in float64, and its losses and its logits afterwards are
compared with tests/fixtures/method_fingerprints.json. When they moved on purpose: raise the method's
``revision`` by one, then rewrite the fixture with `python tests/test_method_revisions.py --update`.

Why float64: in float32 the numbers depend on the order of the sums, which depends on the CPU's vector
kernels (one thread or two: differences up to 3e-3 after three SAM steps; an AMD and an Intel machine gave
recorded numbers that differed by more than 1e-4). In float64 those orders move them by about 1e-15, so the
check can be a million times tighter and still hold on any machine.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import build_method, easy_batch

from bench.method import METHODS

FIXTURE = Path(__file__).parent / "fixtures" / "method_fingerprints.json"
BUILT_IN = sorted(n for n in METHODS if METHODS.get(n).__module__.startswith("methods."))
UPDATE = "python tests/test_method_revisions.py --update"


TOLERANCE = {"rtol": 1e-9, "atol": 1e-11}  # float64 sums in another order move these by about 1e-15


def fingerprint(name: str, *, threads: int = 1) -> list[float]:
    """The losses of three steps on `easy_batch` and the eval logits after them (mean, spread, first, last),
    in float64: the method is built as `bench run` builds it (float32 weights from seed 0), then converted,
    and every tensor it makes while stepping is float64 too (the default dtype meanwhile)."""
    before, dtype = torch.get_num_threads(), torch.get_default_dtype()
    torch.set_num_threads(threads)
    try:
        method = build_method(name).to(torch.float64)
        torch.set_default_dtype(torch.float64)
        batch = easy_batch(pairs=8)
        batch = dataclasses.replace(batch, images=batch.images.to(torch.float64))
        losses = [float(method.update(batch)["loss"]) for _ in range(3)]
        method.eval()
        with torch.no_grad():
            logits = method(batch.images)
    finally:
        torch.set_num_threads(before)
        torch.set_default_dtype(dtype)
    return [*losses, float(logits.mean()), float(logits.std()), float(logits[0]), float(logits[-1])]


def recorded() -> dict[str, dict]:
    return json.loads(FIXTURE.read_text())


@pytest.mark.parametrize("name", BUILT_IN)
def test_numbers_move_only_with_a_new_revision(name: str) -> None:
    entry = recorded().get(name)
    revision = METHODS.get(name).revision
    assert entry is not None, f"{name} has no recorded numbers: run `{UPDATE}`."
    assert entry["revision"] == revision, (
        f"{name} is at revision {revision}, its recorded numbers at {entry['revision']}: run `{UPDATE}`.")
    got = fingerprint(name)
    assert np.allclose(got, entry["numbers"], **TOLERANCE), (
        f"{name}'s numbers changed at revision {revision} ({got} vs {entry['numbers']}): if the change is "
        f"meant, raise {METHODS.get(name).__name__}.revision to {revision + 1} and run `{UPDATE}`; if not, "
        f"the change altered the method by mistake.")


def test_the_fingerprint_tells_methods_and_settings_apart() -> None:
    """The check can fail: another method, or one setting changed, gives other numbers."""
    base = fingerprint("xception")
    assert not np.allclose(base, fingerprint("xception-sam"), **TOLERANCE)
    assert not np.allclose(fingerprint("daw-fdd"), fingerprint("dag-fdd"), **TOLERANCE)
    torch.manual_seed(1)  # build_method reseeds: the same method built again gives the same numbers
    assert np.allclose(base, fingerprint("xception"), rtol=0, atol=0)
    assert torch.get_default_dtype() == torch.float32  # and leaves the default as it was


def test_the_fingerprint_does_not_depend_on_the_order_of_the_sums() -> None:
    """Two threads sum in another order than one (as another CPU's kernels do): the numbers stay within the
    tolerance, so the recorded ones hold on any machine (in float32 they moved by up to 3e-3)."""
    one, two = fingerprint("xception-sam"), fingerprint("xception-sam", threads=2)
    assert np.allclose(one, two, **TOLERANCE)


def test_a_raised_revision_names_a_new_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.config import build_config
    from bench.jobs import make_plan

    def job() -> tuple[str, dict]:
        run = build_config(preset="quick", sets=["plan.methods=daw-fdd", "plan.train=synth-dfd",
                                                 "plan.controls=false", "train.device=cpu", "train.threads=1"])
        (one,) = make_plan(run)
        return one.job_id, one.identity

    before, identity = job()
    assert "method_revision" not in identity  # revision 1 is implicit: older results keep their names
    monkeypatch.setattr(METHODS.get("daw-fdd"), "revision", 2)
    after, identity = job()
    assert after != before and identity["method_revision"] == 2


def update() -> None:
    numbers = {name: {"revision": METHODS.get(name).revision, "numbers": fingerprint(name)} for name in BUILT_IN}
    FIXTURE.write_text(json.dumps(numbers, indent=1, sort_keys=True) + "\n")
    print(f"wrote {FIXTURE}: {len(numbers)} methods")


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit(f"usage: {UPDATE}")
    update()
