"""A corpus of bad inputs, as a hostile user would give them: CLI flags, config files, dataset descriptions,
annotation files, images, damaged prediction files and records, and cache settings.

Every case must end in exit code 2 and one line on stderr that names the file or flag at fault, with no
traceback, before any job is trained. Most run `bench.__main__.main` in this process on the smallest data
there is; a few run a real process, where only the exit code and stderr of the interpreter can show a
traceback.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.__main__ import main

QUICK = ["--preset", "quick", "--no-progress", "--set", "train.epochs=1", "--set", "data.synthetic_scale=0.3",
         "--set", "train.threads=1"]
ONE_JOB = ["--methods", "xception", "--train", "synth-ff", "--test", "synth-ff", "--no-controls"]


def one_line_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    """Run the CLI; require exit 2 and exactly one line on stderr without a traceback; return that line."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("warning:")]
    assert code == 2, (code, err)
    assert "Traceback" not in err
    assert len(lines) == 1, err
    return lines[0]


# ------------------------------------------------------------------------------------------ CLI flags
FLAG_CASES = {
    "unknown-flag": (["run", "--frobnicate"], "--frobnicate"),
    "jobs-zero": (["run", "--jobs", "0"], "--jobs"),
    "jobs-word": (["run", "--jobs", "many"], "--jobs"),
    "seeds-negative": (["run", "--seeds", "-1"], "--seeds"),
    "seeds-backwards": (["run", "--seeds", "4-2"], "--seeds"),
    "seeds-word": (["run", "--seeds", "one"], "--seeds"),
    "preset-unknown": (["run", "--preset", "huge"], "preset 'huge'"),
    "method-unknown": (["run", "--methods", "xceptoin"], "xceptoin"),
    "train-unknown": (["run", "--train", "synth-nowhere"], "synth-nowhere"),
    "test-unknown": (["run", "--test", "synth-nowhere"], "synth-nowhere"),
    "device-cuda-without-gpu": (["run", "--device", "cuda"], "train.device"),
    "device-bogus": (["run", "--device", "tpu"], "train.device 'tpu'"),
    "backend-unknown": (["run", "--backend", "slurm"], "--backend"),
    "scheduler-without-dask": (["run", "--scheduler", "tcp://x:1"], "--scheduler"),
    "set-malformed": (["run", "--set", "epochs"], "--set 'epochs'"),
    "set-unknown-section": (["run", "--set", "trian.epochs=3"], "[trian]"),
    "set-unknown-key": (["run", "--set", "train.epoch=3"], "train.epoch"),
    "set-lr-nan": (["run", "--set", "method.lr=nan"], "method.lr"),
    "set-lr-inf": (["run", "--set", "method.lr=inf"], "method.lr"),
    "set-lr-negative": (["run", "--set", "method.lr=-0.1"], "method.lr"),
    "set-method-lr-nan": (["run", "--set", "xception.lr=nan"], "xception.lr"),
    "set-momentum-minus-inf": (["run", "--set", "method.momentum=-inf"], "method.momentum"),
    "set-scale-inf": (["run", "--set", "data.synthetic_scale=inf"], "data.synthetic_scale"),
    "set-epochs-text": (["run", "--set", "train.epochs=three"], "train.epochs"),
    "set-epochs-zero": (["run", "--set", "train.epochs=0"], "train.epochs"),
    "set-seeds-negative": (["run", "--set", "plan.seeds=[-1]"], "plan.seeds"),
    "set-sampler-choice": (["run", "--set", "train.sampler=random"], "train.sampler"),
    "set-backbone-unknown": (["run", "--set", "method.backbone=resnet9000"], "backbone"),
    "set-pretrained-missing": (["run", "--set", "method.pretrained=/nonexistent/w.pth"], "/nonexistent/w.pth"),
    "set-method-key-unknown": (["run", "--set", "xception.rho=0.1"], "xception.rho"),
    "config-missing": (["run", "--config", "/nonexistent/c.toml"], "/nonexistent/c.toml"),
    "config-is-a-folder": (["run", "--config", "/"], "'/' is a folder, not a file"),
    "status-unknown-method": (["status", "--methods", "nope"], "nope"),
    "report-alpha-nan": (["report", "--alpha", "nan"], "--alpha"),
    "report-alpha-big": (["report", "--alpha", "0.7"], "--alpha"),
    "report-bootstrap-negative": (["report", "--bootstrap", "-5"], "--bootstrap"),
    "report-seed-negative": (["report", "--seed", "-1"], "--seed"),
    "report-formats-unknown": (["report", "--formats", "pdf"], "pdf"),
    "report-metric-unknown": (["report", "--metrics", "f_nope"], "f_nope"),
    "report-cluster-unknown": (["report", "--cluster", "school"], "--cluster"),
    "report-min-group-zero": (["report", "--min-group-size", "0"], "--min-group-size"),
    "data-workers-negative": (["data", "check", "synth-ff", "--workers", "-1"], "--workers"),
    "data-unknown-dataset": (["data", "check", "nosuch"], "nosuch"),
    "data-set-unknown-section": (["data", "check", "synth-ff", "--set", "dat.cache_dir=x"], "[dat]"),
    "extract-frames-zero": (["data", "extract", "v.mp4", "out", "--frames", "0"], "--frames"),
}


@pytest.mark.parametrize("argv, names", FLAG_CASES.values(), ids=FLAG_CASES.keys())
def test_bad_flags(argv: list[str], names: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    extra = {"run": [*QUICK, "--dry-run", "--out", str(tmp_path / "o")], "status": ["--out", str(tmp_path / "o")],
             "report": ["--out", str(tmp_path / "o")]}.get(argv[0], [])
    line = one_line_error([argv[0], *extra, *argv[1:]], capsys)
    assert names in line


def test_out_at_a_file_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "results.txt"
    afile.write_text("mine")
    for argv in (["run", *QUICK, *ONE_JOB], ["run", *QUICK, *ONE_JOB, "--dry-run"], ["status", "--preset", "quick"]):
        line = one_line_error([*argv, "--out", str(afile)], capsys)
        assert "--out" in line and str(afile) in line and "is a file" in line
    line = one_line_error(["run", *QUICK, *ONE_JOB, "--out", str(afile / "sub")], capsys)
    assert str(afile) in line
    assert afile.read_text() == "mine"


# ---------------------------------------------------------------------------------------- config files
CONFIG_CASES = {
    "not-toml": ("[train\nepochs = 3", "not valid TOML"),
    "not-utf8": (b"[train]\nepochs = 3 # \xff\xfe", "not valid TOML"),
    "top-level-key": ("epochs = 3", "top-level key 'epochs'"),
    "preset-inside": ('preset = "quick"', "--preset"),
    "section-not-table": ("[data]\n[data.image_size]\nx = 1", "data.image_size"),
    "unknown-key": ("[train]\nepocs = 3", "train.epocs"),
    "wrong-type": ('[train]\nbatch_size = "many"', "train.batch_size"),
    "lr-nan": ("[method]\nlr = nan", "method.lr"),
    "lr-inf": ("[xception]\nlr = inf", "xception.lr"),
    "seed-negative": ("[plan]\nseeds = [0, -3]", "plan.seeds"),
    "unknown-section": ("[trainn]\nepochs = 3", "[trainn]"),
    "methods-not-table": ("[methods]\nxception = 3", "[methods.xception]"),
    "bool-wrong": ('[train]\ncheckpoint = "maybe"', "train.checkpoint"),
}


@pytest.mark.parametrize("text, names", CONFIG_CASES.values(), ids=CONFIG_CASES.keys())
def test_bad_config_files(text: str | bytes, names: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "my.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    line = one_line_error(["run", *QUICK, "--config", str(path), "--dry-run", "--out", str(tmp_path / "o")], capsys)
    assert names in line


# -------------------------------------------------------------------------------- dataset descriptions
DESCRIPTION_CASES = {
    "not-toml": ('format = "synthetic\n', "not valid TOML"),
    "no-format": ('profile = "ff"\n', "no `format` key"),
    "unknown-format": ('format = "parquet"\n', "parquet"),
    "order-text": ('format = "synthetic"\nprofile = "ff"\norder = "first"\n', "order"),
    "image-size-tiny": ('format = "synthetic"\nprofile = "ff"\nimage_size = 4\n', "image_size"),
    "synthetic-unknown-key": ('format = "synthetic"\nprofile = "ff"\nbais = "on"\n', "bais"),
    "synthetic-profile": ('format = "synthetic"\nprofile = "nope"\n', "profile"),
    "synthetic-bias": ('format = "synthetic"\nprofile = "ff"\nbias = "maybe"\n', "bias"),
    "synthetic-seed": ('format = "synthetic"\nprofile = "ff"\nseed = 1.5\n', "seed"),
    "knobs-not-table": ('format = "synthetic"\nprofile = "ff"\nknobs = 3\n', "[knobs]"),
    "knob-unknown": ('format = "synthetic"\nprofile = "ff"\n[knobs]\nbrightness = 2\n', "brightness"),
    "knob-text-for-number": ('format = "synthetic"\nprofile = "ff"\n[knobs]\ncamera_noise = "lots"\n',
                             "camera_noise"),
    "knob-number-for-list": ('format = "synthetic"\nprofile = "ff"\n[knobs]\nidentities = 5\n', "identities"),
    "knob-list-of-text": ('format = "synthetic"\nprofile = "ff"\n[knobs]\nfake_rate = ["a", "b"]\n', "fake_rate"),
    "knob-out-of-range": ('format = "synthetic"\nprofile = "ff"\n[knobs]\ncamera_noise = -1.0\n', "camera_noise"),
    "knob-nan": ('format = "synthetic"\nprofile = "ff"\n[knobs]\ncamera_blur = nan\n', "camera_blur"),
    "csv-no-root": ('format = "csv"\nfile = "a.csv"\n', "root"),
    "csv-root-is-a-file": ('format = "csv"\nroot = "/dev/null"\nfile = "a.csv"\n', "is a file, not a folder"),
}


@pytest.mark.parametrize("text, names", DESCRIPTION_CASES.values(), ids=DESCRIPTION_CASES.keys())
def test_bad_descriptions(text: str, names: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "datasets"
    folder.mkdir()
    (folder / "mine.toml").write_text(text)
    line = one_line_error(["data", "check", "mine", "--preset", "quick", "--no-progress", "--set",
                           f"data.datasets_dir={folder}", "--set", f"data.cache_dir={tmp_path / 'cache'}"], capsys)
    assert names in line and "mine" in line, line
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


# ------------------------------------------------------------------------- annotation files and images
def _rows(n: int = 4) -> pd.DataFrame:
    return pd.DataFrame({"path": [f"v{i}/f0.png" for i in range(n)], "video": [f"v{i}" for i in range(n)],
                         "identity": [f"id{i}" for i in range(n)], "split": "test", "label": [i % 2 for i in range(n)],
                         "manipulation": [i % 2 for i in range(n)], "gender": 0, "race": 1, "intersection": 1})


def _csv_dataset(folder: Path, damage: Callable[[Path, pd.DataFrame], None]) -> list[str]:
    """A four-frame test-only CSV dataset in the internal schema, damaged by ``damage(data folder, rows)``;
    returns the `bench data check` command line."""
    data = folder / "data"
    rows = _rows()
    for path in rows["path"]:
        (data / path).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(data / path)
    rows.to_csv(data / "all.csv", index=False)
    damage(data, rows)
    (folder / "datasets").mkdir()
    (folder / "datasets" / "mine.toml").write_text(f'format = "csv"\nroot = "{data}"\nfile = "all.csv"\n'
                                                   f'splits = ["test"]\n')
    return ["data", "check", "mine", "--full", "--no-progress", "--min-videos", "1", "--workers", "1",
            "--set", f"data.datasets_dir={folder / 'datasets'}", "--set", f"data.cache_dir={folder / 'cache'}"]


def _rewrite(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path, pd.DataFrame], None]:
    def damage(data: Path, rows: pd.DataFrame) -> None:
        change(rows.copy()).to_csv(data / "all.csv", index=False)
    return damage


def _image(content: bytes, row: int = 1) -> Callable[[Path, pd.DataFrame], None]:
    def damage(data: Path, rows: pd.DataFrame) -> None:
        (data / rows["path"].iat[row]).write_bytes(content)
    return damage


ANNOTATION_CASES = {
    "missing-column": (_rewrite(lambda r: r.drop(columns=["label"])), "all.csv"),
    "label-out-of-coding": (_rewrite(lambda r: r.assign(label=[0, 2, 0, 1])), "all.csv"),
    "label-text": (_rewrite(lambda r: r.assign(label=["real", "fake", "real", "fake"])), "all.csv"),
    "gender-out-of-coding": (_rewrite(lambda r: r.assign(gender=5)), "all.csv"),
    "race-out-of-coding": (_rewrite(lambda r: r.assign(race=9, intersection=9)), "all.csv"),
    "intersection-contradicts": (_rewrite(lambda r: r.assign(intersection=6)), "all.csv"),
    "duplicate-rows": (_rewrite(lambda r: pd.concat([r, r.iloc[:1]])), "all.csv"),
    "empty-file": (lambda data, rows: (data / "all.csv").write_text(""), "all.csv"),
    "header-only": (_rewrite(lambda r: r.iloc[:0]), "all.csv"),
    "not-utf8": (lambda data, rows: (data / "all.csv").write_bytes(
        rows.to_csv(index=False).replace("id1", "id\xe9").encode("latin-1")), "all.csv"),
    "annotations-missing": (lambda data, rows: (data / "all.csv").unlink(), "all.csv"),
    "image-missing": (lambda data, rows: (data / rows["path"].iat[2]).unlink(), "v2/f0.png does not exist"),
    "image-is-a-folder": (lambda data, rows: ((data / rows["path"].iat[2]).unlink(),
                                               (data / rows["path"].iat[2]).mkdir()), "is a folder, not a file"),
    "image-garbage": (_image(b"this is not a picture"), "v1/f0.png"),
    "image-empty": (_image(b""), "v1/f0.png"),
    "image-truncated-png": (_image(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), "v1/f0.png"),
}


@pytest.mark.parametrize("damage, names", ANNOTATION_CASES.values(), ids=ANNOTATION_CASES.keys())
def test_bad_annotations_and_images(damage: Callable, names: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    line = one_line_error(_csv_dataset(tmp_path, damage), capsys)
    assert names in line, line


def test_the_clean_csv_dataset_passes(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The corpus above damages a dataset that is fine as it is (so each case fails for its own damage)."""
    assert main(_csv_dataset(tmp_path, lambda data, rows: None)) == 0


# ------------------------------------------------------------------------------------------------ caches
def test_a_cache_folder_at_a_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "cache"
    afile.write_text("not a folder")
    for argv in (["data", "build", "synth-dfd", "--preset", "quick", "--no-progress"],
                 ["data", "check", "synth-dfd", "--preset", "quick", "--no-progress"],
                 ["run", *QUICK, *ONE_JOB, "--out", str(tmp_path / "o")]):
        line = one_line_error([*argv, "--set", f"data.cache_dir={afile}"], capsys)
        assert str(afile) in line and "data.cache_dir" in line
    assert not (tmp_path / "o" / "runs").exists() or not any((tmp_path / "o" / "runs").iterdir())


# ------------------------------------------------------------------------ damaged predictions and records
@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished job of the baseline on synth-ff, predicting synth-ff only: the smallest results folder."""
    out = tmp_path_factory.mktemp("results")
    assert main(["run", *QUICK, *ONE_JOB, "--out", str(out)]) == 0
    return out


def _predictions(out: Path) -> Path:
    (path,) = (out / "runs").glob("*/predictions/synth-ff.csv.gz")
    return path


def _gz(text: str) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as fh:
        fh.write(text.encode())
    return buffer.getvalue()


def _edit(column: str, value: object, row: int = 3) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        path = _predictions(out)
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
        frame.loc[row, column] = value
        path.write_bytes(_gz(frame.to_csv(index=False)))
    return damage


def _raw(transform: Callable[[bytes], bytes]) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        path = _predictions(out)
        path.write_bytes(transform(path.read_bytes()))
    return damage


def _record(transform: Callable[[str], str]) -> Callable[[Path], None]:
    def damage(out: Path) -> None:
        (path,) = (out / "runs").glob("*/config.json")
        path.write_text(transform(path.read_text()))
    return damage


PREDICTION_CASES = {
    "gzip-truncated": (_raw(lambda b: b[: len(b) // 2]), "synth-ff.csv.gz"),
    "gzip-empty-file": (_raw(lambda b: b""), "synth-ff.csv.gz"),
    "gzip-of-nothing": (_raw(lambda b: _gz("")), "synth-ff.csv.gz"),
    "gzip-corrupt-middle": (_raw(lambda b: b[:40] + bytes(x ^ 0xFF for x in b[40:80]) + b[80:]), "synth-ff.csv.gz"),
    "not-gzip": (_raw(lambda b: b"sample,score\n1,0.5\n"), "synth-ff.csv.gz"),
    "header-only": (_raw(lambda b: _gz(gzip.decompress(b).decode().splitlines()[0] + "\n")), "synth-ff.csv.gz"),
    "missing-column": (_raw(lambda b: _gz(pd.read_csv(io.BytesIO(gzip.decompress(b))).drop(columns=["score"])
                                          .to_csv(index=False))), "synth-ff.csv.gz"),
    "score-text": (_edit("score", "high"), "'score'"),
    "score-nan": (_edit("score", "nan"), "'score'"),
    "score-out-of-range": (_edit("score", "1.5"), "'score'"),
    "logit-empty": (_edit("logit", ""), "'logit'"),
    "label-nan": (_edit("label", ""), "'label'"),
    "label-two": (_edit("label", "2"), "'label'"),
    "gender-outside-coding": (_edit("gender", "7"), "'gender'"),
    "race-outside-coding": (_edit("race", "4"), "'race'"),
    "intersection-outside-coding": (_edit("intersection", "9"), "'intersection'"),
    "intersection-fraction": (_edit("intersection", "1.5"), "'intersection'"),
    "record-missing": (lambda out: next((out / "runs").glob("*/config.json")).unlink(), "config.json"),
    "record-truncated": (_record(lambda t: t[: len(t) // 3]), "config.json"),
    "record-empty": (_record(lambda t: ""), "config.json"),
    "record-not-a-job": (_record(lambda t: "[1, 2, 3]"), "config.json"),
    "record-without-seed": (_record(lambda t: json.dumps({**json.loads(t), "job": {"method": "x", "train": "y"}})),
                            "config.json"),
}


@pytest.mark.parametrize("damage, names", PREDICTION_CASES.values(), ids=PREDICTION_CASES.keys())
def test_damaged_results_folder(damage: Callable[[Path], None], names: str, finished: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "results"
    shutil.copytree(finished, out)
    damage(out)
    line = one_line_error(["report", "--out", str(out), "--no-plots", "--bootstrap", "0", "--formats", "csv",
                           "--no-progress"], capsys)
    assert names in line, line
    if "config.json" not in names:  # the fix for a damaged predictions file: that file alone, no retraining
        assert "Delete this file alone" in line and "without retraining" in line and "DONE" not in line


def test_report_dir_at_a_file(finished: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    afile = tmp_path / "report.md"
    afile.write_text("mine")
    line = one_line_error(["report", "--out", str(finished), "--report-dir", str(afile), "--no-plots"], capsys)
    assert "--report-dir" in line and str(afile) in line
    line = one_line_error(["report", "--out", str(afile), "--no-plots"], capsys)
    assert "--out" in line and str(afile) in line
    assert afile.read_text() == "mine"


# ------------------------------------------------------------------------------- in a real process
@pytest.mark.parametrize("argv, names", [
    (["run", "--set", "method.lr=nan", "--dry-run"], "method.lr"),
    (["report", "--out", "/dev/null"], "--out"),
], ids=["lr-nan", "out-at-a-device"])
def test_no_traceback_in_a_real_process(argv: list[str], names: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "bench", *argv], capture_output=True, text=True, cwd=tmp_path,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and names in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
