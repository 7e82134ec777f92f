"""End to end on the quick preset: every job keeps its validation predictions (and a job from before gains
them without retraining), `bench report --postprocess` adds `<method>+<name>` everywhere with its section,
and no test-domain value reaches model selection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.jobs
from bench.__main__ import main
from bench.store import PREDICTION_COLUMNS, read_predictions

# fairness-aware selection over three epochs, so that the poisoning test below has a choice to spoil
QUICK = ["--preset", "quick", "--no-progress", "--set", "data.synthetic_scale=0.3", "--no-controls",
         "--set", "data.synthetic_test_scale=0.3",  # every Celeb-DF-like group with reals has a few
         "--methods", "xception", "--train", "synth-dfd", "--test", "synth-dfd,synth-celebdf",
         "--set", "train.epochs=3", "--set", "train.selection=val_dto"]
TIMING = ["seconds", "images_per_s"]


def folder_of(out: Path) -> Path:
    (folder,) = (out / "runs").iterdir()
    return folder


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("results")
    assert main(["run", *QUICK, "--out", str(out)]) == 0
    return out


def test_validation_predictions_and_a_job_from_before_gains_them_without_retraining(
        finished: Path, capsys: pytest.CaptureFixture) -> None:
    folder = folder_of(finished)
    validation = read_predictions(folder / "validation.csv.gz")
    assert list(validation.columns) == list(PREDICTION_COLUMNS)
    assert (validation["domain"] == "synth-dfd").all() and set(validation["label"]) == {0, 1}
    assert sorted(p.name for p in (folder / "predictions").iterdir()) == ["synth-celebdf.csv.gz", "synth-dfd.csv.gz"]
    log = pd.read_csv(folder / "log.csv")  # the selected epoch's validation AUC is the file's
    selected = log[log["selected"]].iloc[0]
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(validation["label"], validation["score"]) == pytest.approx(selected["val_auc"], abs=1e-6)

    (folder / "validation.csv.gz").unlink()  # as a job finished before validation predictions were kept
    before = {p.name: p.read_bytes() for p in (folder / "log.csv", folder / "model.pt")}
    assert main(["report", "--out", str(finished), "--postprocess", "thr-fpr", "--bootstrap", "0", "--no-plots",
                 "--formats", "csv", "--no-progress"]) == 0
    assert "no validation predictions, so no post-processing; rerun `bench run`" in capsys.readouterr().out
    assert main(["run", *QUICK, "--out", str(finished)]) == 0
    assert "predicted" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in (folder / "log.csv", folder / "model.pt")} == before
    again = read_predictions(folder / "validation.csv.gz")
    np.testing.assert_allclose(again["logit"], validation["logit"], rtol=1e-6, atol=1e-6)


def test_report_postprocess_adds_methods_everywhere_and_the_section(finished: Path) -> None:
    assert main(["report", "--out", str(finished), "--postprocess", "thr-fpr,thr-eo", "--bootstrap", "50",
                 "--no-plots", "--formats", "csv,md", "--no-progress", "--postprocess-min-group", "3"]) == 0
    tables = finished / "tables"
    board = pd.read_csv(tables / "leaderboard.csv")
    assert set(board["method"]) == {"xception", "xception+thr-fpr", "xception+thr-eo"}
    metrics = pd.read_csv(tables / "metrics.csv")
    assert set(metrics[metrics["method"] == "xception+thr-fpr"]["test"]) == {"synth-dfd", "synth-celebdf"}
    significance = pd.read_csv(tables / "significance.csv")
    assert {"xception+thr-fpr", "xception+thr-eo"} <= set(significance["method"]) | set(significance["other"])
    fits = pd.read_csv(tables / "postprocess.csv")
    validation = read_predictions(folder_of(finished) / "validation.csv.gz")
    counts = validation[validation["intersection"] >= 0].groupby(["intersection", "label"]).size().unstack(fill_value=0)
    small = int((counts.reindex(columns=[0, 1], fill_value=0).min(axis=1) < 3).sum())
    assert fits["groups_fallback"].tolist() == [small, small]
    assert fits["groups_fitted"].tolist() == [len(counts) - small] * 2
    effect = pd.read_csv(tables / "postprocess_effect.csv")
    assert set(effect["postprocessor"]) == {"thr-fpr", "thr-eo"} and set(effect["method"]) == {"xception"}
    assert {"intra", "cross"} <= set(effect["scope"]) and {"AUC", "intersection/F_FPR"} == set(effect["column"])
    scope = effect[effect["level"] == "scope"].set_index(["postprocessor", "scope", "column"])
    means = board.set_index(["method", "scope"])
    for (name, where, column), row in scope.iterrows():  # the leaderboard's difference, with a paired interval
        expected = means.loc[(f"xception+{name}", where), column] - means.loc[("xception", where), column]
        assert row["estimate"] == pytest.approx(expected, abs=1e-9)
        assert np.isfinite([row["ci_low"], row["ci_high"]]).all() and row["ci_low"] <= row["ci_high"]
    assert len(scope) == 2 * 2 * 2  # post-processors x scopes x metrics
    report = (finished / "report.md").read_text()
    assert "## Post-processing: does fairness fitted in-domain carry across domains?" in report
    assert "need group labels at test time" in report and f"{2 * small} group fit(s) fell back" in report


def poison_test_splits(original):
    def ensure(desc, data, **kwargs):
        cache = original(desc, data, **kwargs)
        test = cache.manifest["split"] == "test"
        cache.manifest.loc[test, "label"] = 1 - cache.manifest.loc[test, "label"]
        known = test & (cache.manifest["intersection"] >= 0)
        cache.manifest.loc[known, "intersection"] = (cache.manifest.loc[known, "intersection"] + 3) % 8
        return cache
    return ensure


def test_no_test_domain_value_reaches_selection(finished: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The same job with every test split's labels flipped (and groups moved), the training domain's own
    test split included: the log, its validation values and the chosen epoch do not change."""
    monkeypatch.setattr(bench.jobs, "ensure_cache", poison_test_splits(bench.jobs.ensure_cache))
    assert main(["run", *QUICK, "--test", "synth-dfd", "--out", str(tmp_path)]) == 0
    clean, poisoned = folder_of(finished), folder_of(tmp_path)
    flipped = read_predictions(poisoned / "predictions" / "synth-dfd.csv.gz")["label"]
    assert (flipped == 1 - read_predictions(clean / "predictions" / "synth-dfd.csv.gz")["label"]).all()  # it bit
    logs = [pd.read_csv(f / "log.csv").drop(columns=TIMING) for f in (clean, poisoned)]
    pd.testing.assert_frame_equal(*logs)
    assert {"val_auc", "val_F_FPR", "val_F_OAE", "val_worst_auc", "selected"} <= set(logs[0].columns)
