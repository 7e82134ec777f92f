"""The synthetic bias knobs do what they are for: on a fixed seed, with the default preset, the baseline
trained on the FF++-like shortcut domain is clearly less fair in-domain than the same baseline trained on the
same domain with every bias knob off. Trains two small models (about 30 s on 2 CPU cores).

The shortcut world, not the calibrated `synth-ff`: with the real FF++ test file's group mix and fake shares
(0.77-0.85 fake in every group) the baseline's in-domain F_FPR on `synth-ff` was 8.2 pp with the knobs on
against 15.9 pp off (seed 0), so the check's premise holds only where the knobs include a group -> label
shortcut (docs/DATA.md). Whether a fair loss narrows a gap is a claim about a method, which one seed cannot
carry (issue 13): DAW-FDD's F_OAE against the baseline's was 11.9-16.0 against 15.9-25.3 pp over seeds 0-2
of the earlier faces, 13.1 against 13.8 on seed 0 of these; the report's tests over seeds decide it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import main
from bench.report import make_report


@pytest.mark.slow
def test_bias_knobs_make_the_baseline_unfair(tmp_path: Path) -> None:
    code = main(["run", "--preset", "default", "--methods", "xception", "--train", "synth-ff-shortcut",
                 "--test", "synth-ff-shortcut", "--seeds", "0", "--out", str(tmp_path), "--no-progress",
                 # the thread count changes a CPU run's numbers (it is part of the job identity): pinned, so the
                 # one seed checked here is the same job whatever OMP_NUM_THREADS the test runs under
                 "--set", "train.threads=2"])
    assert code == 0
    tables = make_report(tmp_path, progress=False, echo=False)
    (check,) = tables["controls"].to_dict("records")
    on, off = check["F_FPR_bias_on"], check["F_FPR_bias_off"]
    # Measured over seeds 0-2 of the earlier faces (issue note): on 51-61 pp, off 6-28 pp; in-domain AUC 92-95.
    assert on - off > 15 and on > 1.5 * off, (on, off)
    pairs = tables["pairs"].set_index(["method", "role", "test"])
    assert pairs.loc[("xception", "main", "synth-ff-shortcut"), "AUC"] > 80  # a working detector, not a coin flip
    assert pairs.loc[("xception", "control", "synth-ff-shortcut-nobias"), "AUC"] > 80
