"""The Purdue lab's released annotation files as they are (purdue-v2 shape, file-name schemes, duplicate
rows, leaks across splits, the 6-group intersec_label), read through the shipped -v2 descriptions.

The CSVs under tests/fixtures/purdue_v2/ are hand-written in the published shape (header, folder layout and
file-name scheme of each dataset's release), not produced by our writer; each test spells out what they
must give. The images are tiny placeholders written here.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from published_data import cache_entries, cli

from bench.data.datasets import FORMATS, REPO_DATASETS, read_description
from bench.data.filenames import SCHEMES, parse_names
from bench.data.readers import V2_SIX_GROUP_NOTE
from bench.errors import DataError

FIXTURES = Path(__file__).parent / "fixtures" / "purdue_v2"
HEADER = "Image Path,Ground Truth Gender,Ground Truth Age,Ground Truth Race,Intersection,Target,intersec_label"
SHIPPED = {"ffpp-v2": "ff++", "celebdf-v2": "celebdf", "dfd-v2": "dfd", "dfdc-v2": "dfdc"}


@pytest.fixture
def released(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A placeholder PNG at every path of the fixture CSVs, and the shipped descriptions' variables set."""
    root = tmp_path / "root"
    for table in FIXTURES.rglob("*.csv"):
        with table.open(newline="") as fh:
            for row in csv.DictReader(fh):
                path = root / row["Image Path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.new("RGB", (12, 12), (150, 110, 90)).save(path)
    monkeypatch.setenv("PURDUE_V2_ROOT", str(root))
    monkeypatch.setenv("PURDUE_V2_CSV", str(tmp_path / "csv"))
    for folder in SHIPPED.values():  # a copy, so a test may edit a file
        (tmp_path / "csv" / folder).mkdir(parents=True)
        for table in (FIXTURES / folder).glob("*.csv"):
            (tmp_path / "csv" / folder / table.name).write_text(table.read_text())
    (tmp_path / "datasets").mkdir()
    return tmp_path


def variant(folder: Path, shipped: str, **changes: object) -> None:
    """``folder/datasets/mine.toml``: the shipped description with some keys set otherwise."""
    text = (REPO_DATASETS / f"{shipped}.toml").read_text()
    for key, value in changes.items():
        line = f"{key} = {json.dumps(value)}"
        text, n = re.subn(rf"^{key} = .*$", line, text, flags=re.M)
        if not n:
            text = text.replace("\n[files]", f"{line}\n\n[files]")
    (folder / "datasets" / "mine.toml").write_text(text)


def read(folder: Path | None, name: str):
    path = (folder / "datasets" if folder else REPO_DATASETS) / f"{name}.toml"
    desc = read_description(path)
    return FORMATS.get(desc.format)().read(desc)


def frames(result) -> dict[str, tuple]:
    """file name -> (split, video, identity, label, manipulation, intersection)."""
    m = result.manifest
    return {p.rsplit("/", 1)[1]: (s, v, i, int(lab), int(man), int(g)) for p, s, v, i, lab, man, g in zip(
        m["path"], m["split"], m["video"], m["identity"], m["label"], m["manipulation"], m["intersection"],
        strict=True)}


def check(folder: Path, capsys: pytest.CaptureFixture, name: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = cli("data", "check", name, "--set", f"data.datasets_dir={folder / 'datasets'}",
               "--set", f"data.cache_dir={folder / 'cache'}", "--no-progress")
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------------- the published shape
def test_fixtures_have_the_published_header() -> None:
    tables = sorted(FIXTURES.rglob("*.csv"))
    assert [str(t.relative_to(FIXTURES)) for t in tables] == [
        "celebdf/test_noise.csv", "dfd/test_noise.csv", "dfdc/test_noise.csv", "ff++/test_noise.csv",
        "ff++/train_real.csv"]
    for table in tables:
        assert table.read_text().split("\n", 1)[0] == HEADER


# ------------------------------------------------------------------------------------- file-name rules
def test_ffpp_videos_identities_and_manipulations_from_file_names(released: Path) -> None:
    got = frames(read(None, "ffpp-v2"))  # the shipped description: leaks = "drop-from-train"
    assert got == {
        "0_youtube_000_1.png": ("test", "youtube_000", "000", 0, 0, 5),
        "0_youtube_000_11.png": ("test", "youtube_000", "000", 0, 0, 5),
        "0_Deepfakes_000_003_1.png": ("test", "Deepfakes_000_003", "000", 1, 1, 5),
        "0_Face2Face_000_003_11.png": ("test", "Face2Face_000_003", "000", 1, 2, 5),
        "0_youtube_012_21.png": ("test", "youtube_012", "012", 0, 0, 2),
        "0_NeuralTextures_012_077_291.png": ("test", "NeuralTextures_012_077", "012", 1, 4, 2),
        "0_FaceSwap_045_012_1.png": ("test", "FaceSwap_045_012", "045", 1, 3, 0),
        "0_youtube_045_1.png": ("test", "youtube_045", "045", 0, 0, 0),
        "0_youtube_101_1.png": ("test", "youtube_101", "101", 0, 0, 7),
        # train_real.csv without the 3 frames of youtube_000 and youtube_101 (test videos)
        "0_youtube_200_1.png": ("train", "youtube_200", "200", 0, 0, 1),
        "0_youtube_200_11.png": ("train", "youtube_200", "200", 0, 0, 1),
        "0_youtube_201_1.png": ("train", "youtube_201", "201", 0, 0, 4),
        "0_youtube_201_11.png": ("train", "youtube_201", "201", 0, 0, 4),
    }


def test_celebdf_videos_and_identities_from_file_names(released: Path) -> None:
    got = frames(read(None, "celebdf-v2"))
    assert got == {
        "0_Celeb-synthesis_id0_id16_0000_1.png": ("test", "Celeb-synthesis_id0_id16_0000", "id0", 1, 1, 1),
        "0_Celeb-synthesis_id0_id16_0000_11.png": ("test", "Celeb-synthesis_id0_id16_0000", "id0", 1, 1, 1),
        "0_Celeb-real_id0_0000_1.png": ("test", "Celeb-real_id0_0000", "id0", 0, 0, 1),
        "0_Celeb-real_id0_0003_1.png": ("test", "Celeb-real_id0_0003", "id0", 0, 0, 1),
        "0_Celeb-synthesis_id31_id2_0005_21.png": ("test", "Celeb-synthesis_id31_id2_0005", "id31", 1, 1, 6),
        "0_Celeb-real_id31_0005_21.png": ("test", "Celeb-real_id31_0005", "id31", 0, 0, 6),
        "0_YouTube-real_00170_1.png": ("test", "YouTube-real_00170", "YouTube-real_00170", 0, 0, 4),
        "0_YouTube-real_00170_11.png": ("test", "YouTube-real_00170", "YouTube-real_00170", 0, 0, 4),
        "0_Celeb-synthesis_id12_id5_0002_1.png": ("test", "Celeb-synthesis_id12_id5_0002", "id12", 1, 1, 3),
        "0_Celeb-real_id12_0002_291.png": ("test", "Celeb-real_id12_0002", "id12", 0, 0, 3),
    }


def test_dfd_videos_and_identities_from_file_names(released: Path) -> None:
    got = frames(read(None, "dfd-v2"))
    assert got == {
        "0_27__walking_and_outside_surprised_251.png": ("test", "27__walking_and_outside_surprised", "27", 0, 0, 5),
        "0_27_01__talking_against_wall__ZYCZ30C0_241.png":
            ("test", "27_01__talking_against_wall__ZYCZ30C0", "27", 1, 1, 5),
        "0_22_10__kitchen_still__8YQ2EUQP_261.png": ("test", "22_10__kitchen_still__8YQ2EUQP", "22", 1, 1, 1),
        "0_22_10__kitchen_still__8YQ2EUQP_11.png": ("test", "22_10__kitchen_still__8YQ2EUQP", "22", 1, 1, 1),
        "0_22__talking_against_wall_91.png": ("test", "22__talking_against_wall", "22", 0, 0, 1),
        "0_19__outside_talking_pan_laughing_91.png": ("test", "19__outside_talking_pan_laughing", "19", 0, 0, 4),
        "0_08_28__podium_speech_happy__GGCUYQA4_151.png":
            ("test", "08_28__podium_speech_happy__GGCUYQA4", "08", 1, 1, 3),
        "0_17_08__kitchen_still__ZCEYWYTC_131.png": ("test", "17_08__kitchen_still__ZCEYWYTC", "17", 1, 1, 2),
    }


def test_dfdc_videos_are_their_numbers_and_repeated_rows_are_dropped(released: Path) -> None:
    result = read(None, "dfdc-v2")  # the shipped description: duplicates = "drop"
    assert frames(result) == {
        "0_1021_1.png": ("test", "real_1021", "real_1021", 0, 0, 2),
        "0_1021_11.png": ("test", "real_1021", "real_1021", 0, 0, 2),
        "0_3307_1.png": ("test", "fake_3307", "fake_3307", 1, 1, 5),
        "0_3307_11.png": ("test", "fake_3307", "fake_3307", 1, 1, 5),
        "0_58_291.png": ("test", "fake_58", "fake_58", 1, 1, 6),
        "0_774_21.png": ("test", "real_774", "real_774", 0, 0, 4),
    }
    assert ('duplicates = "drop": 2 duplicate row(s) dropped (2 frame(s) listed more than once, with the same '
            'values each time)') in result.notes
    assert list(result.manifest["origin"].str.rsplit(": ", n=1).str[1]) == [f"row {r}" for r in (1, 2, 3, 4, 6, 8)]


@pytest.mark.parametrize(("scheme", "name", "label", "expected"), [
    ("ffpp", "0_FaceShifter_999_998_1.png", 1, ("FaceShifter_999_998", "999", 1, 5)),
    ("ffpp", "0_youtube_999_291.jpg", 0, ("youtube_999", "999", 0, 0)),
    ("celebdf", "0_Celeb-synthesis_id61_id60_0009_11.png", 1, ("Celeb-synthesis_id61_id60_0009", "id61", 1, 0)),
    ("dfd", "0_03_04__walking_down_indoor_hall_disgust__X1Y2Z3W4_21.png", 1,
     ("03_04__walking_down_indoor_hall_disgust__X1Y2Z3W4", "03", 1, 0)),
    ("dfd", "0_03__walking_down_indoor_hall_disgust_21.png", 0, ("03__walking_down_indoor_hall_disgust", "03", 0, 0)),
    ("dfdc", "0_12_1.png", 1, ("fake_12", "fake_12", -1, 0)),
])
def test_one_name_per_rule(scheme: str, name: str, label: int, expected: tuple) -> None:
    parsed = parse_names(np.array([f"a\\b/{name}"], dtype=object), np.array([label]), scheme)
    assert not parsed.unmatched[0]
    assert (parsed.video[0], parsed.identity[0], int(parsed.label[0]), int(parsed.manipulation[0])) == expected


@pytest.mark.parametrize(("scheme", "name"), [
    ("ffpp", "0_DeepFakeDetection_000_003_1.png"),  # not an FF++ method
    ("ffpp", "000_003/0012.png"),  # the legacy crops' folder-per-video names
    ("celebdf", "0_Celeb-real_id0_1.png"),  # no clip number
    ("dfd", "0_1__exit_phone_room_1.png"),  # actor numbers have two digits
    ("dfdc", "0_aassnaulhq_1.png"),  # DFDC's own video names are not the renumbered ids
])
def test_names_outside_the_scheme_do_not_match(scheme: str, name: str) -> None:
    assert parse_names(np.array([name], dtype=object), np.array([0]), scheme).unmatched[0]
    assert scheme in SCHEMES


def test_a_name_outside_the_scheme_is_an_error_naming_file_and_row(released: Path, capsys) -> None:
    table = released / "csv" / "dfd" / "test_noise.csv"
    lines = table.read_text().split("\n")
    lines[3] = lines[3].replace("0_22_10__kitchen_still__8YQ2EUQP_261.png", "0_22_10_kitchen_still_261.png")
    table.write_text("\n".join(lines))
    code, _, err = check(released, capsys, "dfd-v2")
    assert code == 2 and err.count("\n") == 1
    assert (f"error: {table}: row 3, column 'Image Path': expected a file name of the dfd scheme (DFD fake "
            f"0_01_02__exit_phone_room__YVGY8LOK_11.png; DFD real 0_01__exit_phone_room_11.png), got "
            f"'fairness_dataset/deepfakes/dfd/fake/0_22_10_kitchen_still_261.png'.") in err


def test_a_target_that_contradicts_the_file_name_is_an_error(released: Path) -> None:
    table = released / "csv" / "ff++" / "test_noise.csv"
    lines = table.read_text().split("\n")
    lines[5] = lines[5].replace("0_youtube_012_21.png,1,1,2,2,0,2", "0_youtube_012_21.png,1,1,2,2,1,2")
    table.write_text("\n".join(lines))
    with pytest.raises(DataError, match=re.escape(f"{table}: row 5, column 'Target': expected 0 (the file name is "
                                                  f"that of a real video), got '1'.")):
        read(None, "ffpp-v2")


# ------------------------------------------------------------------------------------------ leaks
def test_leaks_are_refused_by_default_with_the_counts_and_the_options(released: Path, capsys) -> None:
    variant(released, "ffpp-v2", leaks="error")
    code, out, err = check(released, capsys, "mine")
    csvs = released / "csv" / "ff++"
    assert code == 2 and out == "" and err.count("\n") == 1
    # youtube_000: 1 train frame, 2 test reals (+ 2 fakes of identity 000); youtube_101: 2 train frames, 1 test
    assert err == (f"error: {csvs / 'test_noise.csv'}: row 1, column 'Image Path': expected video-disjoint splits, "
                   f"but video 'youtube_000' is in train (e.g. {csvs / 'train_real.csv'}: row 1) and in test; 2 "
                   f"video(s) are in more than one split (youtube_000, youtube_101); in all 2 video(s) and 2 "
                   f"identity(s) are shared (3 train frame(s), 5 test frame(s)): set leaks = \"drop-from-train\" "
                   f"(drops 3 train frame(s)) or leaks = \"drop-from-test\" (drops 5 test frame(s)) in "
                   f"{released / 'datasets' / 'mine.toml'}.\n")
    assert cache_entries(released) == []


def test_drop_from_test_keeps_the_training_frames(released: Path) -> None:
    variant(released, "ffpp-v2", leaks="drop-from-test")
    result = read(released, "mine")
    got = frames(result)
    assert sorted(n for n, f in got.items() if f[0] == "train") == [
        "0_youtube_000_21.png", "0_youtube_101_11.png", "0_youtube_101_21.png", "0_youtube_200_1.png",
        "0_youtube_200_11.png", "0_youtube_201_1.png", "0_youtube_201_11.png"]
    assert sorted(n for n, f in got.items() if f[0] == "test") == [  # identities 000 and 101 are gone from test
        "0_FaceSwap_045_012_1.png", "0_NeuralTextures_012_077_291.png", "0_youtube_012_21.png",
        "0_youtube_045_1.png"]
    assert ('leaks = "drop-from-test": 2 video(s) and 2 identity(s) were in more than one split; dropped 5 test '
            'frame(s) of them') in result.notes


def test_an_identity_leak_without_a_video_leak_is_dropped_too(released: Path) -> None:
    """A train video of test identity 045 (another video than the test ones) leaks the identity only."""
    table = released / "csv" / "ff++" / "train_real.csv"
    fakes = "fairness_dataset/deepfakes/ff++/crop_img"
    table.write_text(table.read_text() + f"{fakes}/0_Deepfakes_045_200_1.png,1,3,0,0,1,0\n")
    (released / "root" / fakes / "0_Deepfakes_045_200_1.png").write_bytes(
        (released / "root" / fakes / "0_FaceSwap_045_012_1.png").read_bytes())
    result = read(None, "ffpp-v2")
    assert "0_Deepfakes_045_200_1.png" not in frames(result)
    assert ('leaks = "drop-from-train": 2 video(s) and 3 identity(s) were in more than one split; dropped 4 train '
            'frame(s) of them') in result.notes


# ------------------------------------------------------------------------------------- duplicates
def test_duplicates_are_refused_by_default_with_the_count_and_the_option(released: Path, capsys) -> None:
    variant(released, "dfdc-v2", duplicates="error")
    code, _, err = check(released, capsys, "mine")
    table = released / "csv" / "dfdc" / "test_noise.csv"
    assert code == 2 and err.count("\n") == 1
    assert err == (f"error: {table}: row 5, column 'Image Path': expected each frame once, got "
                   f"'fairness_dataset/deepfakes/dfdc/real/0_1021_1.png' again (first at {table}: row 1); 2 "
                   f"duplicate row(s) of 2 frame(s); set duplicates = \"drop\" in "
                   f"{released / 'datasets' / 'mine.toml'} to keep the first row of each.\n")


def test_a_repeat_with_other_values_is_not_dropped(released: Path) -> None:
    table = released / "csv" / "dfdc" / "test_noise.csv"
    table.write_text(table.read_text().replace("dfdc/fake/0_3307_11.png,0,1,1,5,1,5\nfairness_dataset/deepfakes/"
                                               "dfdc/real/0_774", "dfdc/fake/0_3307_11.png,0,1,2,6,1,6\n"
                                               "fairness_dataset/deepfakes/dfdc/real/0_774"))
    with pytest.raises(DataError, match=re.escape(f"{table}: row 7, column 'Image Path': expected a repeated frame "
                                                  f"to repeat its values, got 'fairness_dataset/deepfakes/dfdc/fake/"
                                                  f"0_3307_11.png' again with race 2 (first at {table}: row 4, with "
                                                  f"1)")):
        read(None, "dfdc-v2")


# ---------------------------------------------------------------------------------- intersec_label codings
CELEBDF_SIX = [1, 1, 1, 1, 6, 6, 7, 7, 3, 2]  # intersec_label 0 0 0 0 4 4 5 5 2 1 in the 6-group coding


def test_six_group_intersec_label_is_read_as_six_groups(released: Path) -> None:
    variant(released, "celebdf-v2", group_column="intersec_label")  # groups = 6, as shipped
    result = read(released, "mine")
    assert list(result.manifest["intersection"]) == CELEBDF_SIX
    assert list(result.manifest["gender"]) == [0, 0, 0, 0, 1, 1, 1, 1, 0, 0]
    assert V2_SIX_GROUP_NOTE in result.notes


def test_auto_decides_six_groups_from_the_agreement_with_intersection(released: Path) -> None:
    variant(released, "celebdf-v2", group_column="intersec_label", groups="auto")
    result = read(released, "mine")
    assert list(result.manifest["intersection"]) == CELEBDF_SIX
    # 9 of 10 codes agree with Intersection (Asian folded into Others) read in 6 groups, none in 8
    assert ('groups = "auto": intersec_label read in the 6-group coding (codes 0..5 only; read so, they agree '
            'with Intersection on 90% of 10 frames; read in 8 groups, on 0%)') in result.notes


def test_eight_groups_reads_the_codes_as_they_are(released: Path) -> None:
    """What the reader did before: a 6-group file read as 8 groups gets groups and genders wrong."""
    variant(released, "celebdf-v2", group_column="intersec_label", groups=8)
    assert list(read(released, "mine").manifest["intersection"]) == [0, 0, 0, 0, 4, 4, 5, 5, 2, 1]


def test_auto_decides_eight_groups_when_codes_six_or_seven_occur(released: Path) -> None:
    variant(released, "ffpp-v2", group_column="intersec_label", groups="auto")
    result = read(released, "mine")
    assert ('groups = "auto": intersec_label read in the 8-group coding (4 frame(s) have code 6 or 7, which the '
            '6-group coding does not have)') in result.notes
    got = frames(result)
    assert got["0_Face2Face_000_003_11.png"][5] == 6 and got["0_youtube_101_1.png"][5] == 7


def test_a_code_outside_the_six_group_coding_is_refused(released: Path) -> None:
    table = released / "csv" / "celebdf" / "test_noise.csv"
    lines = table.read_text().split("\n")
    lines[3] = lines[3][:-1] + "7"
    table.write_text("\n".join(lines))
    variant(released, "celebdf-v2", group_column="intersec_label")
    with pytest.raises(DataError, match=re.escape(f"{table}: row 3, column 'intersec_label': expected 0..5 (the "
                                                  f"6-group coding: M-White, M-Black, M-Others, F-White, F-Black, "
                                                  f"F-Others) or -1, got '7'.")):
        read(released, "mine")


def test_auto_without_intersection_to_compare_asks_for_groups(released: Path) -> None:
    table = released / "csv" / "dfd" / "test_noise.csv"
    frame = pd.read_csv(table, dtype=str).drop(columns="Intersection")
    frame.to_csv(table, index=False)
    variant(released, "dfd-v2", group_column="intersec_label", groups="auto")
    with pytest.raises(DataError, match=re.escape(f"{table}: column 'intersec_label': cannot tell its coding (codes "
                                                  f"0..5 only, and no Intersection column to compare with); set "
                                                  f"groups = 6 or groups = 8 in")):
        read(released, "mine")


# ------------------------------------------------------------------------------ data check and the cache
def test_data_check_of_each_shipped_description(released: Path, capsys) -> None:
    outputs = {}
    for name in SHIPPED:
        code, out, err = check(released, capsys, name)
        assert code == 0 and err == "", (name, err)
        outputs[name] = out
    assert ('note: leaks = "drop-from-train": 2 video(s) and 2 identity(s) were in more than one split; dropped 3 '
            'train frame(s) of them') in outputs["ffpp-v2"]
    assert 'note: duplicates = "drop": 2 duplicate row(s) dropped' in outputs["dfdc-v2"]
    splits = {name: out.split("Splits\n")[1].split("\n\n")[0] for name, out in outputs.items()}
    # split, frames, real, fake, videos, identities, manipulations
    assert re.search(r"test\s+9\s+5\s+4\s+8\s+4\s+1, 2, 3, 4", splits["ffpp-v2"])
    assert re.search(r"train\s+4\s+4\s+0\s+2\s+2", splits["ffpp-v2"])
    assert re.search(r"test\s+10\s+6\s+4\s+8\s+4\s+1", splits["celebdf-v2"])
    assert re.search(r"test\s+8\s+3\s+5\s+7\s+5\s+1", splits["dfd-v2"])
    assert re.search(r"test\s+6\s+3\s+3\s+4\s+4\s+1", splits["dfdc-v2"])


def test_the_cache_records_what_was_dropped(released: Path, capsys) -> None:
    capsys.readouterr()
    assert cli("data", "build", "dfdc-v2", "--set", f"data.cache_dir={released / 'cache'}", "--no-progress") == 0
    out = capsys.readouterr().out
    assert 'dfdc-v2: note: duplicates = "drop": 2 duplicate row(s) dropped' in out
    (cache,) = (released / "cache").iterdir()
    meta = json.loads((cache / "meta.json").read_text())
    assert any(n.startswith('duplicates = "drop": 2 duplicate row(s) dropped') for n in meta["notes"])
    assert len(pd.read_csv(cache / "manifest.csv")) == 6


def test_jobs_record_the_notes_and_the_report_shows_them(released: Path, capsys) -> None:
    """The dropped rows of a test domain travel from the cache into config.json and report.md."""
    out = released / "results"
    quick = ["--preset", "quick", "--no-progress", "--set", "train.epochs=1", "--set", "data.synthetic_scale=0.1",
             "--set", f"data.cache_dir={released / 'cache'}"]
    assert cli("run", *quick, "--out", str(out), "--methods", "xception", "--train", "synth-ff",
               "--test", "dfdc-v2", "--seeds", "0", "--no-controls") == 0
    (job,) = (out / "runs").iterdir()
    record = json.loads((job / "config.json").read_text())
    assert record["predictions"]["dfdc-v2"]["frames"] == 6
    assert any(n.startswith('duplicates = "drop": 2 duplicate row(s) dropped')
               for n in record["predictions"]["dfdc-v2"]["data_notes"])
    assert cli("report", "--out", str(out), "--bootstrap", "0", "--no-plots") == 0
    report = (out / "report.md").read_text()
    notes = report.split("**Notes on this data.**")[1].split("## ")[0]
    assert '- dfdc-v2: duplicates = "drop": 2 duplicate row(s) dropped' in notes


@pytest.mark.parametrize(("changes", "message"), [
    ({"leaks": "drop"}, "leaks must be one of 'error', 'drop-from-train', 'drop-from-test'; got 'drop'."),
    ({"duplicates": "keep"}, "duplicates must be one of 'error', 'drop'; got 'keep'."),
    ({"names": "ff++"}, "names must be one of 'ffpp', 'celebdf', 'dfd', 'dfdc' (the file-name schemes of the "
                        "released files); got 'ff++'."),
    ({"groups": 7}, "groups must be 8, 6 or \"auto\"; got '7'."),
    ({"video_pattern": "(?P<video>.*)"}, "names = 'ffpp' gives each frame's video and identity; remove "
                                         "video_pattern and identity_pattern"),
])
def test_bad_settings_are_one_line_errors(released: Path, capsys, changes: dict, message: str) -> None:
    variant(released, "ffpp-v2", **changes)
    code, _, err = check(released, capsys, "mine")
    assert code == 2 and err.count("\n") == 1 and message in err, err
