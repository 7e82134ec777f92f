"""Damaged and stale state is noticed: predictions whose data changed are re-predicted (and refused by the
report), unreadable records are rebuilt without retraining, damaged frame caches are rebuilt once, a
broken dataset description stops only what uses it, and a job's record stays whole across interruptions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bench.jobs
from bench.__main__ import main
from bench.data.cache import CacheDamaged, FrameCache
from bench.store import read_predictions

QUICK = ["--preset", "quick", "--no-progress", "--set", "train.epochs=1", "--set", "data.synthetic_scale=0.3",
         "--set", "train.threads=1"]
TESTS = ["synth-ff", "synth-dfd"]


def run(out: Path, datasets: Path, *extra: str) -> int:
    return main(["run", *QUICK, "--methods", "xception", "--train", "synth-ff", "--test", ",".join(TESTS),
                 "--no-controls", "--out", str(out), "--set", f"data.datasets_dir={datasets}", *extra])


def report(out: Path, *selection: str) -> int:
    return main(["report", "--out", str(out), "--no-plots", "--bootstrap", "0", "--formats", "csv", "--no-progress",
                 *selection])


def job_folder(out: Path) -> Path:
    (folder,) = (out / "runs").iterdir()
    return folder


def stamps(folder: Path) -> dict[str, int]:
    """Modification times of a job's files: what a step rewrote."""
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted job (the baseline on synth-ff, predicting synth-ff and synth-dfd)."""
    root = tmp_path_factory.mktemp("clean")
    (root / "datasets").mkdir()
    assert run(root / "results", root / "datasets") == 0
    return root


def copy_of(clean: Path, tmp_path: Path) -> tuple[Path, Path]:
    shutil.copytree(clean, tmp_path / "copy")
    return tmp_path / "copy" / "results", tmp_path / "copy" / "datasets"


def frames(folder: Path) -> dict[str, pd.DataFrame]:
    return {d: read_predictions(folder / "predictions" / f"{d}.csv.gz") for d in TESTS}


# ------------------------------------------------------------------------------------ 1: no staleness
def test_a_changed_test_domain_is_refused_by_the_report_and_repredicted(clean: Path, tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    out, datasets = copy_of(clean, tmp_path)
    folder = job_folder(out)
    before, old = stamps(folder), json.loads((folder / "config.json").read_text())
    shipped = Path(__file__).resolve().parents[1] / "datasets" / "synth-dfd.toml"
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "synth-dfd.toml").write_text(shipped.read_text().replace("seed = 1003", "seed = 1004"))
    monkeypatch.setenv("BENCH_DATASETS", str(changed))  # found before the shipped one, by runs and reports

    capsys.readouterr()
    assert report(out) == 2
    err = capsys.readouterr().err
    assert folder.name in err and "'synth-dfd'" in err and "python -m bench run" in err and "stale" in err

    assert run(out, datasets) == 0
    said = capsys.readouterr().out
    assert "synth-dfd predicted again" in said and "already finished" not in said
    after, new = stamps(folder), json.loads((folder / "config.json").read_text())
    for unchanged in ("model.pt", "log.csv", "predictions/synth-ff.csv.gz"):  # no retraining, nothing else redone
        assert after[unchanged] == before[unchanged], unchanged
    assert after["predictions/synth-dfd.csv.gz"] != before["predictions/synth-dfd.csv.gz"]
    assert new["predictions"]["synth-ff"] == old["predictions"]["synth-ff"]
    assert new["predictions"]["synth-dfd"]["manifest_hash"] != old["predictions"]["synth-dfd"]["manifest_hash"]
    assert new["training"] == old["training"]
    assert report(out) == 0
    assert run(out, datasets) == 0 and "1 of 1 job(s) already finished" in capsys.readouterr().out


def test_stale_predictions_outside_the_selection_do_not_stop_its_report(clean: Path, tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """synth-dfd's predictions stale, synth-ff's not: `report --test synth-ff` leaves the stale ones out and
    reports; a selection holding them (`--test synth-dfd`, or the job by `--methods` and `--train`) is refused
    with the same message as the whole report."""
    out, _ = copy_of(clean, tmp_path)
    folder = job_folder(out)
    shipped = Path(__file__).resolve().parents[1] / "datasets" / "synth-dfd.toml"
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "synth-dfd.toml").write_text(shipped.read_text().replace("seed = 1003", "seed = 1004"))
    monkeypatch.setenv("BENCH_DATASETS", str(changed))

    capsys.readouterr()
    assert report(out, "--test", "synth-ff") == 0
    table = pd.read_csv(out / "reports" / "test-synth-ff" / "tables" / "pairs.csv")
    assert set(table["test"]) == {"synth-ff"}
    for selection in (["--test", "synth-dfd"], ["--test", "synth-*"], ["--methods", "xception", "--train", "synth-ff"],
                      []):
        capsys.readouterr()
        assert report(out, *selection) == 2, selection
        err = capsys.readouterr().err
        assert folder.name in err and "'synth-dfd'" in err and "stale" in err and "python -m bench run" in err
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_an_unreadable_record_is_rebuilt_without_retraining(clean: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture) -> None:
    out, datasets = copy_of(clean, tmp_path)
    folder = job_folder(out)
    expected, before = frames(folder), stamps(folder)
    record = folder / "config.json"
    record.write_text(record.read_text()[:200])  # cut short

    capsys.readouterr()
    assert report(out) == 2 and "config.json" in capsys.readouterr().err
    assert run(out, datasets) == 0
    said = capsys.readouterr().out
    assert "already finished" not in said and "config.json is missing or unreadable" in said
    assert stamps(folder)["model.pt"] == before["model.pt"] and stamps(folder)["log.csv"] == before["log.csv"]
    assert sorted(json.loads(record.read_text())["predictions"]) == sorted(TESTS)
    for domain, frame in frames(folder).items():
        pd.testing.assert_frame_equal(frame, expected[domain])
    assert report(out) == 0


def test_unreadable_weights_are_retrained_and_said(clean: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    out, datasets = copy_of(clean, tmp_path)
    folder = job_folder(out)
    expected = frames(folder)
    (folder / "predictions" / "synth-dfd.csv.gz").unlink()  # a new test domain to predict ...
    (folder / "model.pt").write_bytes(b"not a model")  # ... with weights that cannot be read
    capsys.readouterr()
    assert run(out, datasets) == 0
    assert "its model.pt could not be read (UnpicklingError), so it was retrained" in capsys.readouterr().out
    for domain, frame in frames(folder).items():  # the same seed retrains the same weights
        pd.testing.assert_frame_equal(frame, expected[domain])


# ---------------------------------------------------------------------------- 3: cache checksums
@pytest.fixture()
def built_cache(tmp_path: Path) -> tuple[list[str], Path, np.ndarray]:
    argv = ["--preset", "quick", "--no-progress", "--set", "data.synthetic_scale=0.1", "--set",
            f"data.cache_dir={tmp_path / 'cache'}"]
    assert main(["data", "build", "synth-dfd", *argv]) == 0
    (folder,) = (tmp_path / "cache").iterdir()
    return argv, folder, np.load(folder / "images.npy").copy()


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "meta"])
def test_a_damaged_cache_is_noticed_and_rebuilt_once(built_cache: tuple[list[str], Path, np.ndarray], damage: str,
                                                     capsys: pytest.CaptureFixture) -> None:
    argv, folder, original = built_cache
    images = folder / "images.npy"
    if damage == "truncate":
        images.write_bytes(images.read_bytes()[: images.stat().st_size // 2])
    elif damage == "flip":  # same size, one byte of one pixel changed: only the checksum can tell
        data = bytearray(images.read_bytes())
        data[len(data) // 2] ^= 0x01
        images.write_bytes(bytes(data))
    elif damage == "manifest":
        (folder / "manifest.csv").write_text((folder / "manifest.csv").read_text().replace(",test,", ",train,", 1))
    else:
        (folder / "meta.json").write_text("{")
    with pytest.raises(CacheDamaged, match=str(folder)):
        FrameCache.open(folder)
    capsys.readouterr()
    assert main(["data", "check", "synth-dfd", *argv]) == 0
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert said.count("is damaged") == 1 and "rebuilding it" in said and "Traceback" not in said
    cache = FrameCache.open(folder)
    assert np.array_equal(np.asarray(cache.images), original)
    assert main(["data", "build", "synth-dfd", *argv]) == 0  # now up to date: no second rebuild
    assert "is damaged" not in capsys.readouterr().out


# ------------------------------------------------------------------------ 5: a broken description
def test_a_broken_description_stops_only_what_uses_it(clean: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture) -> None:
    out, datasets = copy_of(clean, tmp_path)
    (datasets / "mine.toml").write_text('format = "synthetic"\nprofile = "ff"\norder = "first"\n')
    (datasets / "other.toml").write_text('format = "synthetic\n')
    capsys.readouterr()
    assert run(out, datasets) == 0  # a finished run that does not use them goes on
    captured = capsys.readouterr()
    assert "1 of 1 job(s) already finished" in captured.out
    assert "warning: dataset 'mine' is left out" in captured.err and "other.toml" in captured.err
    assert run(out, datasets, "--test", "synth-ff,mine", "--dry-run") == 2
    err = capsys.readouterr().err
    assert "mine.toml" in err and "order" in err


def test_bench_list_shows_a_broken_description(tmp_path: Path, capsys: pytest.CaptureFixture,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mine.toml").write_text("format = [\n")
    monkeypatch.chdir(tmp_path)  # ./datasets is searched
    capsys.readouterr()
    assert main(["list", "datasets", "--preset", "quick"]) == 0
    listing = capsys.readouterr().out
    (line,) = [line for line in listing.splitlines() if line.startswith("mine ")]
    assert "BROKEN" in line and "mine.toml" in line
    assert "synth-ff " in listing


# -------------------------------------------------------------------------- 6: records stay whole
def test_a_kill_while_writing_done_leaves_nothing_and_retrains_nothing(clean: Path, tmp_path: Path) -> None:
    out, datasets = copy_of(clean, tmp_path)
    folder = job_folder(out)
    expected, before = frames(folder), stamps(folder)
    (folder / "DONE").unlink()  # what a SIGKILL inside the atomic write of DONE leaves
    (folder / ".DONE.tmp-99999").write_text("")
    assert run(out, datasets) == 0
    assert (folder / "DONE").exists() and not list(folder.rglob(".*.tmp-*"))
    after = stamps(folder)
    for unchanged in ("model.pt", "log.csv", *(f"predictions/{d}.csv.gz" for d in TESTS)):
        assert after[unchanged] == before[unchanged], unchanged
    for domain, frame in frames(folder).items():
        pd.testing.assert_frame_equal(frame, expected[domain])


def test_a_job_resumed_in_its_prediction_phase_records_every_domain(clean: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    out = tmp_path / "results"
    real = bench.jobs.write_predictions

    def killed_after_the_first(path: Path, frame: pd.DataFrame) -> None:
        if path.name.startswith("synth-dfd"):
            raise KeyboardInterrupt
        real(path, frame)

    monkeypatch.setattr(bench.jobs, "write_predictions", killed_after_the_first)
    assert run(out, datasets) == 130
    folder = job_folder(out)
    assert (folder / "predictions" / "synth-ff.csv.gz").exists() and not (folder / "DONE").exists()
    before = stamps(folder)
    monkeypatch.setattr(bench.jobs, "write_predictions", real)
    assert run(out, datasets) == 0
    record = json.loads((folder / "config.json").read_text())
    assert sorted(record["predictions"]) == sorted(TESTS)
    assert record["training"]["best_epoch"] == 1
    assert stamps(folder)["model.pt"] == before["model.pt"]  # not trained again
    expected = frames(job_folder(clean / "results"))
    for domain, frame in frames(folder).items():  # the same numbers as the uninterrupted run
        pd.testing.assert_frame_equal(frame, expected[domain])
