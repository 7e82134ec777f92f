"""`bench data check`: files present and decodable (a sample or all), splits, frames per video, and the
group x label table with empty and tiny cells flagged; non-zero exit on errors, zero with warnings."""

from __future__ import annotations

from pathlib import Path

import pytest
from published_data import cache_entries, cli, domain, settings, write_dataset

from bench.data import synthetic


def check(folder: Path, capsys: pytest.CaptureFixture, *extra: str, name: str = "mine") -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli("data", "check", name, *settings(folder), *extra)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_clean_dataset_passes_and_shows_its_tables(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="purdue-legacy")
    code, out, err = check(tmp_path, capsys)
    assert code == 0 and err == ""
    manifest, _ = domain()
    for fragment in ("Data check of mine", "Splits", "splits are video- and identity-disjoint", "Frames per video",
                     "Group x label, train split: frames (videos)", "Group x label, test split", "M-White",
                     f"{len(manifest)} of {len(manifest)} image files present; decoded a random sample of 200 frames: "
                     f"0 unreadable", "source images: 32x32 px", "mine: 0 error(s)"):
        assert fragment in out, fragment
    test = manifest[manifest["split"] == "test"]
    white_men = test[test["intersection"] == 1]
    real = white_men[white_men["label"] == 0]
    assert f"{len(real)} ({real['video'].nunique()})" in out.split("Group x label, test split")[1]
    assert cache_entries(tmp_path) == []  # a check writes no cache


def test_six_group_coding_is_explained_not_flagged(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="purdue-legacy", six_groups=True)
    code, out, _ = check(tmp_path, capsys)
    assert code == 0
    assert "note: 6-group coding (no isasian column): Asian is merged into Others" in out
    assert out.count("merged into Others (6-group coding)") == 6  # M-Asian and F-Asian in each of 3 splits
    assert "M-Asian: no" not in out


def test_undecodable_images_are_errors_and_full_decodes_every_frame(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="purdue-legacy")
    data = tmp_path / "data"
    broken = (data / "faketrain.csv").read_text().split("\n")[7].split(",")[0]
    (data / broken).write_bytes(b"not an image")
    code, out, _ = check(tmp_path, capsys, "--sample", "3")
    assert code == 0 and "decoded a random sample of 3 frames: 0 unreadable (--full decodes every frame)" in out
    code, out, err = check(tmp_path, capsys, "--full")
    assert code == 2
    assert f"ERROR: {data / 'faketrain.csv'}: row 7, column 'img_path': {data / broken} is not an image file" in out
    assert err.startswith("error: data check found errors in 1 dataset(s); mine: ") and err.count("\n") == 1


def test_missing_images_are_listed(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="purdue-v2")
    manifest, _ = domain()
    for path in manifest["path"].iloc[:3]:
        (tmp_path / "data" / path).unlink()
    code, out, _ = check(tmp_path, capsys)
    assert code == 2
    assert out.count("does not exist") == 3 and "column 'Image Path'" in out
    assert f"{len(manifest) - 3} of {len(manifest)} image files present" in out


def test_empty_and_tiny_cells_and_short_videos_are_warnings(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    manifest, images = domain("celebdf", 32, 0.2)
    test = manifest["split"] == "test"
    groups = manifest.loc[test, "intersection"].value_counts()
    group = int(groups.index[0])  # the biggest test group loses its reals: an empty cell
    drop = test & (manifest["intersection"] == group) & (manifest["label"] == 0)
    short = manifest.loc[test & ~drop, "video"].iat[0]
    drop |= (manifest["video"] == short) & ~manifest["sample"].str.endswith("f000")  # 1 frame of 5 left
    kept = manifest[~drop].reset_index(drop=True)
    synthetic.write_frames(kept, images[~drop.to_numpy()], tmp_path / "data")
    kept.drop(columns=["true_gender", "true_race", "true_intersection"]).to_csv(tmp_path / "data" / "all.csv",
                                                                                index=False)
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "mine.toml").write_text(f'format = "csv"\nroot = "{tmp_path / "data"}"\n'
                                                     f'file = "all.csv"\n')
    code, out, err = check(tmp_path, capsys)
    name = ("M-Asian", "M-White", "M-Black", "M-Others", "F-Asian", "F-White", "F-Black", "F-Others")[group]
    assert code == 0 and err == ""
    assert f"warning: test split, {name}: no real frames, so its per-group AUC (and TPR or FPR) is NaN" in out
    assert "EMPTY real cell: per-group AUC is NaN" in out
    assert "tiny: < 5 videos" in out and "its per-group metrics rest on very few videos" in out
    assert "warning: test fakes: 1 video(s) have fewer than half the median 5 frames" in out or \
        "warning: test reals: 1 video(s) have fewer than half the median 5 frames" in out


def test_a_synthetic_domain_can_be_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    code = cli("data", "check", "synth-dfd", "--preset", "quick", "--set", "data.synthetic_scale=0.1",
               "--set", f"data.cache_dir={tmp_path}", "--no-progress")
    out = capsys.readouterr().out
    assert code == 0 and "Group x label, test split" in out and "synth-dfd: 0 error(s)" in out


def test_a_dataset_that_is_not_there_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FFPP_ROOT", raising=False)
    capsys.readouterr()
    assert cli("data", "check", "ffpp", "--set", f"data.cache_dir={tmp_path}") == 2
    err = capsys.readouterr().err
    assert "Dataset 'ffpp'" in err and "environment variable FFPP_ROOT is not set" in err and err.count("\n") == 1
    assert cli("data", "build", "nonesuch") == 2
    assert "Unknown dataset 'nonesuch'" in capsys.readouterr().err
