"""The results folder's bookkeeping, through `bench.store`'s public API and without training: the job states
`bench status` and `bench run` act on, the job lock, atomic and reproducible writes, and reading runs back.
Written after mutation testing (docs/CONTRIBUTING.md) found these paths reached only through whole runs that
never looked at them."""

from __future__ import annotations

import errno
import gzip
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.errors import BenchError
from bench.store import (
    PREDICTION_COLUMNS,
    JobBusy,
    Store,
    atomic_write_bytes,
    atomic_write_csv,
    atomic_write_json,
    move_into,
    read_predictions,
    write_predictions,
)


def predictions(rows: int = 4) -> pd.DataFrame:
    """A valid predictions table in the file's column order, with ids that only string columns keep."""
    logit = np.linspace(-2.0, 2.0, rows)
    return pd.DataFrame({
        "sample": [f"00{i}" for i in range(rows)], "video": ["NA"] * rows, "identity": ["null"] * rows,
        "domain": "d", "label": [i % 2 for i in range(rows)], "logit": logit, "score": 1 / (1 + np.exp(-logit)),
        "gender": [i % 2 for i in range(rows)], "race": [3 - i % 4 for i in range(rows)],
        "intersection": [7 - i % 9 for i in range(rows)], "manipulation": [i for i in range(rows)],
    })


def test_job_state_follows_the_folder_lock_done_marker_and_prediction_files(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.state("j", ["a"]) == "pending"  # no folder yet
    store.job_dir("j").mkdir(parents=True)
    assert store.state("j", ["a"]) == "incomplete"
    with store.lock("j"):
        assert store.state("j", ["a"]) == "running"
    assert store.state("j", ["a"]) == "incomplete"  # the lock is released with the block
    store.mark_done("j")
    assert store.is_done("j") and store.state("j", ["a"]) == "predict"  # done, but a has no predictions
    files = store.job_files("j")
    files.predictions.mkdir()
    files.prediction("a").write_bytes(b"x")
    assert store.state("j", ["a"]) == "predict"  # the validation predictions are still missing
    files.validation.write_bytes(b"x")
    assert store.state("j", ["a"]) == "done"
    assert store.state("j", ["a", "b"]) == "predict" and store.missing_predictions("j", ["b", "a"]) == ["b"]
    assert store.state("j", []) == "done" and not store.is_done("other")


def test_a_second_lock_is_refused_and_leftover_temporaries_are_cleared(tmp_path: Path) -> None:
    store = Store(tmp_path)
    files = store.job_files("job-7")
    files.predictions.mkdir(parents=True)
    leftovers = [files.folder / ".config.json.tmp-123", files.predictions / ".a.csv.gz.tmp-9"]
    kept = [files.folder / "config.json", files.predictions / "a.csv.gz", files.folder / "tmp-1"]
    for path in leftovers + kept:
        path.write_text("x")
    with store.lock("job-7") as folder:
        assert folder == files.folder
        assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)
        with pytest.raises(JobBusy, match="job-7"), store.lock("job-7"):
            pass
    with store.lock("job-7"):  # free again once the first holder is done
        pass


def test_atomic_csv_writes_are_reproducible_gzip_and_leave_no_temporaries(tmp_path: Path) -> None:
    frame = predictions()
    path = tmp_path / "deep" / "er" / "p.csv.gz"  # missing folders are made
    atomic_write_csv(path, frame)
    first = path.read_bytes()
    assert first[:2] == b"\x1f\x8b" and first[4:8] == b"\0\0\0\0"  # gzip with no timestamp (RFC 1952 MTIME 0)
    assert gzip.decompress(first).decode() == frame.to_csv(index=False)
    atomic_write_csv(path, frame)
    assert path.read_bytes() == first  # equal tables, equal bytes
    plain = tmp_path / "log.csv"
    atomic_write_csv(plain, frame)
    assert plain.read_text() == frame.to_csv(index=False)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["log.csv", "p.csv.gz"]


def test_durable_writes_reach_the_disk_before_replacing_and_derived_ones_skip_only_that(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A durable write syncs its temporary file (and only that) before the rename; ``durable=False`` (the
    report's files) writes the same bytes, as atomically, without the sync."""
    synced: list[str] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    durable, derived = tmp_path / "model.pt", tmp_path / "figure.png"
    atomic_write_bytes(durable, b"weights")
    assert [Path(p).name for p in synced] == [f".model.pt.tmp-{os.getpid()}"]
    atomic_write_bytes(derived, b"old")
    synced.clear()
    atomic_write_bytes(derived, b"pixels", durable=False)
    atomic_write_csv(tmp_path / "table.csv", predictions(), durable=False)
    assert synced == []
    assert derived.read_bytes() == b"pixels" and durable.read_bytes() == b"weights"
    assert (tmp_path / "table.csv").read_text() == predictions().to_csv(index=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png", "model.pt", "table.csv"]


def test_predictions_are_written_in_the_contract_order_and_read_back_with_canonical_types(tmp_path: Path) -> None:
    frame = predictions()
    shuffled = frame[list(reversed(PREDICTION_COLUMNS))].assign(extra=1.0)
    path = tmp_path / "p.csv.gz"
    write_predictions(path, shuffled)
    assert gzip.decompress(path.read_bytes()).decode().splitlines()[0] == ",".join(PREDICTION_COLUMNS)
    back = read_predictions(path)
    assert list(back.columns) == list(PREDICTION_COLUMNS)
    pd.testing.assert_frame_equal(back, frame.astype({c: np.int64 for c in ("label", "gender", "race",
                                                                            "intersection", "manipulation")}))
    assert back["sample"].tolist() == ["000", "001", "002", "003"] and back["video"].tolist() == ["NA"] * 4
    with pytest.raises(ValueError, match="race"):
        write_predictions(path, frame.drop(columns=["race"]))


@pytest.mark.parametrize(("column", "edge", "outside"), [("gender", 1, 2), ("race", 3, 4), ("intersection", 7, 8),
                                                         ("label", 1, 2), ("race", -1, -2), ("score", 1.0, 1.01)])
def test_coded_columns_accept_their_whole_range_and_nothing_beyond(tmp_path: Path, column: str, edge: float,
                                                                    outside: float) -> None:
    path = tmp_path / "p.csv.gz"
    frame = predictions()
    frame.loc[1, column] = edge
    write_predictions(path, frame)
    assert read_predictions(path)[column].iloc[1] == edge
    frame.loc[1, column] = outside
    write_predictions(path, frame)
    with pytest.raises(BenchError, match=f"row 3, column '{column}'"):
        read_predictions(path)


def test_infinite_logits_are_kept_but_infinite_scores_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "p.csv.gz"
    frame = predictions()
    frame.loc[0, "logit"] = -np.inf
    write_predictions(path, frame)
    assert read_predictions(path)["logit"].iloc[0] == -np.inf
    frame.loc[2, "score"] = np.inf
    write_predictions(path, frame)
    with pytest.raises(BenchError, match="row 4, column 'score'"):
        read_predictions(path)


def test_finished_and_unfinished_runs_are_read_back_in_folder_order(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for job, seed, done in (("b-job", 1, True), ("a-job", 0, True), ("c-job", 2, False)):
        files = store.job_files(job)
        record = {"job": {"method": "m-" + job, "train": "t", "seed": seed}}
        if job == "a-job":
            record["job"]["role"] = "control"
        atomic_write_json(files.config, record)
        files.predictions.mkdir()
        for domain in ("z", "y"):
            write_predictions(files.prediction(domain), predictions())
        if done:
            store.mark_done(job)
    runs = store.finished_runs()
    assert [r.job_id for r in runs] == ["a-job", "b-job"]
    a, b = runs
    assert (a.method, a.train, a.seed, a.role) == ("m-a-job", "t", 0, "control")
    assert (b.method, b.seed, b.role) == ("m-b-job", 1, "main")
    assert list(b.prediction_files()) == ["y", "z"]
    assert b.prediction_files()["z"] == store.predictions_path("b-job", "z")
    assert b.validation == store.job_files("b-job").validation and b.path == store.job_dir("b-job")
    assert store.unfinished_runs() == [store.job_dir("c-job")]


def test_json_records_hold_plain_values(tmp_path: Path) -> None:
    path = tmp_path / "r" / "config.json"
    atomic_write_json(path, {"path": Path("a/b"), "int": np.int64(3), "float": np.float32(0.5), "pair": (1, 2),
                             "set": {4}})
    text = path.read_text()
    assert text.endswith("}\n")
    assert json.loads(text) == {"path": "a/b", "int": 3, "float": 0.5, "pair": [1, 2], "set": [4]}
    with pytest.raises(TypeError, match="object"):
        atomic_write_json(path, {"x": object()})
    assert json.loads(path.read_text())["int"] == 3  # a failed write leaves the old file whole


def test_files_move_into_a_folder_whole_also_across_file_systems(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Each file replaces its namesake by one rename; where the folder is on another file system (rename
    refused with EXDEV), by a copy beside the target renamed over it, and the source goes either way."""
    incoming, folder = tmp_path / "incoming", tmp_path / "figures"
    incoming.mkdir()
    folder.mkdir()
    (folder / "a.png").write_bytes(b"old a")
    for name in ("a.png", "b.png"):
        (incoming / name).write_bytes(f"new {name}".encode())
    real_replace = os.replace

    def other_disk(src: str | Path, dst: str | Path) -> None:  # a rename between the two folders fails
        if Path(src).parent != Path(dst).parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", other_disk)
    moved = move_into(sorted(incoming.iterdir()), folder)
    assert moved == [folder / "a.png", folder / "b.png"]
    assert [p.read_bytes() for p in moved] == [b"new a.png", b"new b.png"]
    assert not list(incoming.iterdir()) and sorted(p.name for p in folder.iterdir()) == ["a.png", "b.png"]
    monkeypatch.setattr(os, "replace", real_replace)
    (incoming / "c.png").write_bytes(b"c")
    assert move_into([incoming / "c.png"], tmp_path / "new" / "folder") == [tmp_path / "new" / "folder" / "c.png"]
