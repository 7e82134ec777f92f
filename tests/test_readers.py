"""Readers of the published formats: generated domains written in each format read back as the generator's
manifest, and every bad input ends in one line naming file, row and column, exit code 2, and no cache."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from published_data import cache_entries, canonical, cli, domain, settings, write_dataset

from bench.config import build_config
from bench.data import synthetic
from bench.data.cache import ensure_cache
from bench.data.datasets import FORMATS, read_description
from bench.data.layout import evenly_spaced_frames
from bench.data.readers import SIX_GROUP_NOTE
from bench.errors import DataError


def read(datasets: Path, name: str = "mine"):
    desc = read_description(datasets / f"{name}.toml")
    return FORMATS.get(desc.format)().read(desc)


def asian_merged_into_others(manifest: pd.DataFrame) -> pd.DataFrame:
    race = manifest["race"].where(manifest["race"] != 0, 3)
    return manifest.assign(race=race, intersection=manifest["gender"] * 4 + race)


# ------------------------------------------------------------------------------------------- round trips
@pytest.mark.parametrize(("fmt", "writer"), [
    ("purdue-legacy", {}),
    ("purdue-legacy", {"path_prefix": "/home/authors/crops/"}),
    ("purdue-v2", {"path_prefix": "/data/ai-face/", "windows_separators": True}),
    ("deepfakebench", {"path_prefix": "C:/Users/authors/rgb/", "windows_separators": True}),
])
def test_written_domain_reads_back_as_the_generators_manifest(tmp_path: Path, fmt: str, writer: dict) -> None:
    manifest, images = domain()
    datasets = write_dataset(tmp_path, format=fmt, **writer)
    result = read(datasets)
    assert canonical(result.manifest).equals(canonical(manifest))
    assert not result.manifest["path"].str.contains("\\", regex=False).any()
    # ... and the cache built from the PNG files holds the generator's pixels, row for row
    data = build_config(preset="quick", sets=[f"data.cache_dir={tmp_path / 'cache'}"]).data
    cache = ensure_cache(read_description(datasets / "mine.toml"), data)
    order = {s: i for i, s in enumerate(manifest["sample"])}
    assert np.array_equal(np.asarray(cache.images), images[[order[s] for s in cache.manifest["sample"]]])
    assert canonical(cache.manifest).equals(canonical(manifest))


def test_six_group_coding_maps_to_eight_groups_and_records_the_merge(tmp_path: Path) -> None:
    manifest, _ = domain()
    assert (manifest["race"] == 0).any()  # the domain has Asian subjects to merge
    result = read(write_dataset(tmp_path, format="purdue-legacy", six_groups=True))
    assert canonical(result.manifest).equals(canonical(asian_merged_into_others(manifest)))
    assert SIX_GROUP_NOTE in result.notes
    header = (tmp_path / "data" / "test.csv").read_text().split("\n", 1)[0]
    assert header == "img_path,label,ismale,iswhite,isblack,intersec_label,spe_label"


def test_v2_reads_the_chosen_group_column(tmp_path: Path) -> None:
    manifest, _ = domain()
    datasets = write_dataset(tmp_path, format="purdue-v2", options={"group_column": "intersec_label"})
    result = read(datasets)
    written = pd.concat([pd.read_csv(tmp_path / "data" / f"{s}.csv") for s in ("train", "val", "test")])
    noisy = dict(zip(written["Image Path"], written["intersec_label"], strict=True))
    got = result.manifest
    assert (got["intersection"].to_numpy() == got["path"].map(noisy).to_numpy()).all()
    assert (got["intersection"] == got["gender"] * 4 + got["race"]).all()
    changed = canonical(got)["intersection"] != canonical(manifest)["intersection"]
    assert 0 < changed.mean() < 0.3  # the noisier labels differ from Intersection on some videos
    assert "groups from the 'intersec_label' column (the noisier labels)" in result.notes


def test_generic_csv_reads_back_with_windows_separators_and_no_sample_column(tmp_path: Path) -> None:
    manifest, images = domain()
    synthetic.write_frames(manifest, images, tmp_path / "data")
    table = manifest.drop(columns=["sample", "true_gender", "true_race", "true_intersection"])
    table.assign(path=table["path"].str.replace("/", "\\")).to_csv(tmp_path / "data" / "frames.csv", index=False)
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    (datasets / "mine.toml").write_text(f'format = "csv"\nroot = "{tmp_path / "data"}"\nfile = "frames.csv"\n')
    assert canonical(read(datasets).manifest).equals(canonical(manifest))


def test_frames_per_video_keeps_evenly_spaced_frames_not_the_first(tmp_path: Path) -> None:
    datasets = write_dataset(tmp_path, format="deepfakebench", profile="celebdf", scale=0.1,
                             options={"frames_per_video": 2})
    got = read(datasets).manifest
    manifest, _ = domain("celebdf", 32, 0.1)
    assert manifest.groupby("video").size().eq(5).all()
    assert got.groupby("video").size().eq(2).all() and got["video"].nunique() == manifest["video"].nunique()
    assert set(got["sample"].str[-4:]) == {"f001", "f003"}  # floor((i + 0.5) * 5 / 2): frames 1 and 3 of 0..4


def test_evenly_spaced_frames_in_frame_order() -> None:
    paths = [f"v/{i}.png" for i in (10, 2, 0, 1, 9, 3, 4, 5, 6, 7, 8)]  # natural order 0..10, shuffled
    frame = pd.DataFrame({"path": paths, "video": "v"})
    kept = evenly_spaced_frames(frame, 4)
    assert sorted(int(p[2:-4]) for p in kept["path"]) == [1, 4, 6, 9]  # floor((i + 0.5) * 11 / 4)
    assert len(evenly_spaced_frames(frame, 20)) == 11


def test_absolute_paths_without_a_matching_prefix_say_what_to_set(tmp_path: Path) -> None:
    datasets = write_dataset(tmp_path, format="purdue-legacy", path_prefix="/elsewhere/crops/",
                             options={"path_prefix": ""})
    with pytest.raises(DataError, match=re.escape("column 'img_path': expected a path relative to root")) as info:
        read(datasets)
    assert 'set path_prefix = "/elsewhere/crops/' in str(info.value)


def test_identity_pattern_that_does_not_match_is_named(tmp_path: Path) -> None:
    datasets = write_dataset(tmp_path, format="purdue-legacy", options={"identity_pattern": r"^(?P<identity>\d{3})"})
    with pytest.raises(DataError, match=r"realtrain.csv: row 1, column 'img_path': expected a video matching "
                                        r"identity_pattern"):
        read(datasets)


# ----------------------------------------------------------------------------------------- bad input
def edit_csv(path: Path, change) -> None:
    lines = path.read_text().split("\n")
    path.write_text("\n".join(change(lines)))


def fails(folder: Path, capsys: pytest.CaptureFixture, *fragments: str, commands: tuple[str, ...] = ("build", "check"),
          ) -> str:
    """Run `bench data build` and `bench data check`: exit code 2, one line on stderr holding every
    fragment, and no cache written."""
    for command in commands:
        capsys.readouterr()
        assert cli("data", command, "mine", *settings(folder)) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1, err
        for fragment in fragments:
            assert fragment in err, f"{fragment!r} not in {err!r}"
        assert cache_entries(folder) == []
    return err


def check_lists(folder: Path, capsys: pytest.CaptureFixture, fragment: str) -> None:
    """`bench data check` reports a bad image in its report and exits with 2."""
    capsys.readouterr()
    assert cli("data", "check", "mine", "--full", *settings(folder)) == 2
    std = capsys.readouterr()
    assert fragment in std.out and std.err.startswith("error: data check found errors") and std.err.count("\n") == 1
    assert cache_entries(folder) == []


@pytest.fixture
def legacy(tmp_path: Path) -> Path:
    write_dataset(tmp_path, format="purdue-legacy")
    return tmp_path


def test_missing_column(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    def drop_ismale(lines):
        return [",".join(c for i, c in enumerate(line.split(",")) if i != 2) if line else line for line in lines]

    edit_csv(legacy / "data" / "faketrain.csv", drop_ismale)
    fails(legacy, capsys, "faketrain.csv: header row, column 'ismale': missing; expected a header with img_path, "
                          "label, ismale")


def set_cell(lines: list[str], row: int, column: int, value: str) -> list[str]:
    cells = lines[row].split(",")
    cells[column] = value
    lines[row] = ",".join(cells)
    return lines


def test_unknown_label_value(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    edit_csv(legacy / "data" / "faketrain.csv", lambda lines: set_cell(lines, 3, 1, "2"))
    fails(legacy, capsys, "faketrain.csv: row 3, column 'label': expected one of 0, 1, got '2'.")


def test_label_that_contradicts_its_file(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    edit_csv(legacy / "data" / "realval.csv", lambda lines: set_cell(lines, 2, 1, "1"))
    fails(legacy, capsys, "realval.csv: row 2, column 'label': expected 0 (every row of a real*.csv file is real)")


def test_unknown_group_value(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    edit_csv(legacy / "data" / "test.csv", lambda lines: set_cell(lines, 5, 6, "9"))
    fails(legacy, capsys, "test.csv: row 5, column 'intersec_label': expected 0..7 (M-Asian", "got '9'")


def test_group_that_contradicts_the_attribute_flags(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    lines = (legacy / "data" / "test.csv").read_text().split("\n")
    code = int(lines[4].split(",")[6])
    edit_csv(legacy / "data" / "test.csv", lambda rows: set_cell(rows, 4, 6, str((code + 1) % 8)))
    fails(legacy, capsys, f"test.csv: row 4, column 'intersec_label': expected {code} (", "the group of the ismale")


@pytest.mark.parametrize(("fmt", "file", "edit", "fragments"), [
    ("purdue-v2", "test.csv", lambda lines: set_cell(lines, 2, 3, "7"),
     ["test.csv: row 2, column 'Ground Truth Race': expected 0 Asian, 1 White, 2 Black, 3 Others or -1, got '7'"]),
    ("purdue-v2", "train.csv", lambda lines: set_cell(lines, 1, 5, "yes"),
     ["train.csv: row 1, column 'Target': expected one of 0, 1, got 'yes'"]),
    ("deepfakebench", "demographics.csv", lambda lines: set_cell(lines, 3, 2, "Martian"),
     ["demographics.csv: row 3, column 'race': expected 0/Asian, 1/White, 2/Black, 3/Others or -1/unknown, "
      "got 'Martian'"]),
])
def test_unknown_values_in_the_other_formats(tmp_path: Path, capsys: pytest.CaptureFixture, fmt, file, edit,
                                            fragments) -> None:
    write_dataset(tmp_path, format=fmt)
    edit_csv(tmp_path / "data" / file, edit)
    fails(tmp_path, capsys, *fragments)


def test_unknown_label_name_in_deepfakebench_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="deepfakebench")
    path = tmp_path / "data" / "mine.json"
    tree = json.loads(path.read_text())
    videos = tree["mine"]["mine_fake1"]["train"]["c23"]
    first = next(iter(videos))
    videos[first]["label"] = "mine_FaceShifter"
    path.write_text(json.dumps(tree))
    fails(tmp_path, capsys, f"mine.json: video mine > mine_fake1 > train > c23 > {first}, key 'label': expected "
                            f"one of", "(the [labels] table of", "got 'mine_FaceShifter'")


def test_missing_image(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    path = (legacy / "data" / "realval.csv").read_text().split("\n")[2].split(",")[0]
    (legacy / "data" / path).unlink()
    fails(legacy, capsys, f"realval.csv: row 2, column 'img_path': expected an image file, but "
                          f"{legacy / 'data' / path} does not exist; 1 of 504 frames are missing", "--skip-bad",
          commands=("build",))
    check_lists(legacy, capsys, f"realval.csv: row 2, column 'img_path': {legacy / 'data' / path} does not exist")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_undecodable_image(legacy: Path, capsys: pytest.CaptureFixture, damage: str) -> None:
    path = legacy / "data" / (legacy / "data" / "faketrain.csv").read_text().split("\n")[7].split(",")[0]
    data = path.read_bytes()
    path.write_bytes(b"these bytes are not a PNG" if damage == "garbage" else data[: len(data) // 2])
    reason = "is not an image file" if damage == "garbage" else "cannot be decoded"
    fails(legacy, capsys, f"faketrain.csv: row 7, column 'img_path': expected a decodable image, but {path} {reason}",
          "1 unreadable image(s) in all", "--skip-bad", commands=("build",))
    check_lists(legacy, capsys, f"faketrain.csv: row 7, column 'img_path': {path} {reason}")


def test_windows_separators_are_accepted(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="purdue-legacy", windows_separators=True, path_prefix="D:\\crops\\")
    assert "\\" in (tmp_path / "data" / "test.csv").read_text().split("\n")[1]
    assert cli("data", "build", "mine", *settings(tmp_path)) == 0
    (cache,) = (tmp_path / "cache").iterdir()
    stored = pd.read_csv(cache / "manifest.csv")
    assert not stored["path"].str.contains("\\", regex=False).any()
    assert set(stored["path"]) == set(domain()[0]["path"])


def test_file_that_is_not_utf8(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    path = legacy / "data" / "test.csv"
    lines = path.read_bytes().split(b"\n")
    lines[6] = lines[6].replace(b".png", b"\xe9.png", 1)  # latin-1 e-acute
    path.write_bytes(b"\n".join(lines))
    fails(legacy, capsys, "test.csv: row 6 (line 7), column 1 ('img_path'): expected UTF-8 text, got byte 0xe9")


def test_file_in_utf16(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    path = legacy / "data" / "fakeval.csv"
    path.write_bytes(path.read_text().encode("utf-16"))
    fails(legacy, capsys, "fakeval.csv: row 0 (the header), column 1: expected UTF-8 text, got a UTF-16/32")


def test_duplicate_rows(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    path = legacy / "data" / "faketrain.csv"
    lines = path.read_text().rstrip("\n").split("\n")
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    fails(legacy, capsys, f"faketrain.csv: row {len(lines)}, column 'img_path': expected each frame once, got "
                          f"'{lines[1].split(',')[0]}' again (first at {path}: row 1)")


def test_identity_in_two_splits(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    manifest, _ = domain()
    test_reals = manifest[(manifest["split"] == "test") & (manifest["label"] == 0)]
    video = test_reals["video"].iat[0]
    identity = test_reals["identity"].iat[0]
    moved = []

    def take(lines):
        kept = [line for line in lines if not line.startswith(f"{video}/")]
        moved.extend(line for line in lines if line.startswith(f"{video}/"))
        return kept

    def put(lines):  # a real test row has the spe_label column; realtrain.csv has not
        return lines[:-1] + [line.rsplit(",", 1)[0] for line in moved] + lines[-1:]

    edit_csv(legacy / "data" / "test.csv", take)
    edit_csv(legacy / "data" / "realtrain.csv", put)
    fails(legacy, capsys, "column 'img_path': expected identity-disjoint splits, but identity "
                          f"'{identity}' is in train (e.g. {legacy / 'data' / 'realtrain.csv'}: row",
          "and in test; 1 identity(s) are in more than one split")


def test_video_in_two_splits(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    moved = []

    def take(lines):
        moved.append(lines.pop(1))
        return lines

    edit_csv(legacy / "data" / "realval.csv", take)
    edit_csv(legacy / "data" / "realtrain.csv", lambda lines: lines[:-1] + moved + lines[-1:])
    fails(legacy, capsys, "column 'img_path': expected video-disjoint splits, but video", "is in train")


def test_empty_split(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    edit_csv(legacy / "data" / "fakeval.csv", lambda lines: lines[:1])
    fails(legacy, capsys, "fakeval.csv: row 1, column 'img_path': expected at least one data row (the val split), "
                          "got a header only")


def test_empty_split_in_deepfakebench_and_generic(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="deepfakebench")
    path = tmp_path / "data" / "mine.json"
    tree = json.loads(path.read_text())
    for by_split in tree["mine"].values():
        by_split.pop("val", None)
    path.write_text(json.dumps(tree))
    fails(tmp_path, capsys, "mine.json: mine > * > val, key 'frames': expected at least one frame for the val split")


def test_sidecar_that_covers_only_some_videos(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    datasets = write_dataset(tmp_path, format="deepfakebench")
    sidecar = tmp_path / "data" / "demographics.csv"
    lines = sidecar.read_text().rstrip("\n").split("\n")
    n_videos = len(lines) - 1
    sidecar.write_text("\n".join(lines[:-3]) + "\n")
    fails(tmp_path, capsys, "key 'video': expected a row in", f"but 3 of {n_videos} videos of mine.json are "
                            "unmatched", 'unmatched = "unknown"')
    toml = datasets / "mine.toml"
    toml.write_text(toml.read_text().replace('format = "deepfakebench"', 'format = "deepfakebench"\n'
                                                                         'unmatched = "unknown"'))
    result = read(datasets)
    assert f"3 of {n_videos} videos have no row in demographics.csv: their groups are unknown (-1)" in result.notes
    unknown = result.manifest[result.manifest["intersection"] < 0]
    assert unknown["video"].nunique() == 3 and (unknown[["gender", "race"]] == -1).all().all()


def test_bad_input_also_stops_bench_run(legacy: Path, capsys: pytest.CaptureFixture) -> None:
    edit_csv(legacy / "data" / "test.csv", lambda lines: set_cell(lines, 5, 1, "real"))
    capsys.readouterr()
    code = cli("run", "--preset", "quick", "--methods", "xception", "--train", "mine", "--test", "mine",
               "--out", str(legacy / "results"), *settings(legacy))
    err = capsys.readouterr().err
    assert code == 2 and "test.csv: row 5, column 'label': expected one of 0, 1, got 'real'." in err
    assert cache_entries(legacy) == []

