"""Every built-in method's numbers are held at its code revision (`Method.revision`).

The revision is part of a job's identity, so a change to a method's code that alters its numbers must raise
it; otherwise `bench run` takes the finished jobs of the old code for the new one. Here each method takes
three steps on a fixed batch from fixed weights, on one thread, and its losses and its logits afterwards are
compared with tests/fixtures/method_fingerprints.json. When they moved on purpose: raise the method's
``revision`` by one, then rewrite the fixture with `python tests/test_method_revisions.py --update`.
"""

from __future__ import annotations

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


def fingerprint(name: str) -> list[float]:
    """The losses of three steps on `easy_batch` and the eval logits after them: mean, spread, first, last."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the thread count changes the sums: one thread gives the same numbers anywhere here
    try:
        method = build_method(name)
        batch = easy_batch(pairs=8)
        losses = [float(method.update(batch)["loss"]) for _ in range(3)]
        method.eval()
        with torch.no_grad():
            logits = method(batch.images).double()
    finally:
        torch.set_num_threads(threads)
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
    assert np.allclose(got, entry["numbers"], rtol=1e-4, atol=1e-5), (
        f"{name}'s numbers changed at revision {revision} ({got} vs {entry['numbers']}): if the change is "
        f"meant, raise {METHODS.get(name).__name__}.revision to {revision + 1} and run `{UPDATE}`; if not, "
        f"the change altered the method by mistake.")


def test_the_fingerprint_tells_methods_and_settings_apart() -> None:
    """The check can fail: another method, or one setting changed, gives other numbers."""
    base = fingerprint("xception")
    assert not np.allclose(base, fingerprint("xception-sam"), rtol=1e-4, atol=1e-5)
    assert not np.allclose(fingerprint("daw-fdd"), fingerprint("dag-fdd"), rtol=1e-4, atol=1e-5)
    torch.manual_seed(1)  # build_method reseeds: the same method built again gives the same numbers
    assert np.allclose(base, fingerprint("xception"), rtol=0, atol=0)


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
