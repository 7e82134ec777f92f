"""Building frame caches from image files: real photos (scikit-image's, loaded from the installed package)
at the right size and colour order, resuming an interrupted build, parallel workers, --skip-bad, cache keys
that follow the annotation files, and the shipped real-dataset descriptions running `bench run`."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from published_data import cache_entries, canonical, cli, domain, settings, write_dataset

import bench.data.build
import bench.data.synthetic
from bench.config import build_config
from bench.data.cache import BuildOptions, FrameCache, cache_path, ensure_cache
from bench.data.datasets import discover, read_description
from bench.jobs import make_plan

skimage = pytest.importorskip("skimage")
from skimage import data as skdata  # noqa: E402
from skimage.transform import resize  # noqa: E402

SKIMAGE_DATA = Path(skdata.__file__).parent
REPO = Path(__file__).resolve().parents[1]
PATTERN = f"identity_pattern = '{bench.data.synthetic.IDENTITY_PATTERN}'"  # generated videos: id0042_v3...


# ---------------------------------------------------------------------------------------- real photos
def reference(rgb: np.ndarray, size: int) -> np.ndarray:
    """The expected frame, computed independently: centre square crop, antialiased resize (scikit-image)."""
    h, w = rgb.shape[:2]
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    crop = rgb[top:top + side, left:left + side].astype(np.float64)
    return resize(crop, (size, size), order=1, anti_aliasing=True, preserve_range=True)


def photo_dataset(folder: Path, size: int) -> dict[str, np.ndarray]:
    """Real photos as a generic-CSV dataset, each in its own video folder; returns the expected RGB arrays."""
    chelsea = skdata.chelsea()
    camera = skdata.camera()
    files: dict[str, tuple[str, np.ndarray]] = {
        "astronaut": ("astronaut.png", skdata.astronaut()),  # RGB PNG, square
        "chelsea": ("chelsea.png", chelsea),  # landscape: centre crop
        "coffee": ("coffee.png", skdata.coffee()),
        "rocket": ("rocket.jpg", skdata.rocket()),  # a JPEG (decoded in draft mode)
        "camera": ("camera.png", np.repeat(camera[..., None], 3, axis=2)),  # grey -> RGB
    }
    data = folder / "data"
    for video, (name, _) in files.items():
        (data / video).mkdir(parents=True)
        shutil.copy(SKIMAGE_DATA / name, data / video / name)
    logo = np.asarray(Image.open(SKIMAGE_DATA / "logo.png"))  # RGBA: alpha dropped
    (data / "logo").mkdir()
    Image.fromarray(logo, mode="RGBA").save(data / "logo" / "logo.png")
    files["logo"] = ("logo.png", logo[..., :3])
    (data / "camera16").mkdir()  # 16-bit grey: scaled to 8 bits, not clipped
    Image.fromarray(camera.astype(np.uint16) * 257).save(data / "camera16" / "camera16.png")
    files["camera16"] = ("camera16.png", files["camera"][1])
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    (data / "rotated").mkdir()
    Image.fromarray(chelsea).save(data / "rotated" / "rotated.jpg", quality=97, exif=exif)
    files["rotated"] = ("rotated.jpg", np.rot90(chelsea, k=-1))
    rows = [{"path": f"{video}/{name}", "video": video, "identity": video, "split": "test", "label": i % 2,
             "manipulation": i % 2, "gender": 0, "race": 1, "intersection": 1}
            for i, (video, (name, _)) in enumerate(files.items())]
    pd.DataFrame(rows).to_csv(data / "photos.csv", index=False)
    (folder / "datasets").mkdir()
    (folder / "datasets" / "photos.toml").write_text(
        f'format = "csv"\nroot = "{data}"\nfile = "photos.csv"\nsplits = ["test"]\nimage_size = {size}\n')
    return {video: rgb for video, (_, rgb) in files.items()}


@pytest.mark.parametrize("size", [64, 256])
def test_real_photos_come_out_at_the_right_size_and_colour_order(tmp_path: Path, size: int) -> None:
    expected = photo_dataset(tmp_path, size)
    assert cli("data", "build", "photos", *settings(tmp_path)) == 0
    (folder,) = (tmp_path / "cache").iterdir()
    cache = FrameCache.open(folder)
    assert cache.images.shape == (len(expected), size, size, 3) and cache.images.dtype == np.uint8
    for row, video in enumerate(cache.manifest["video"]):
        got = np.asarray(cache.images[row], dtype=np.float64)
        want = reference(expected[video], size)
        error = np.abs(got - want).mean()
        assert error < 4.0, (video, error)  # two antialiased bilinear resizes (and a JPEG) agree closely
        if video in ("astronaut", "chelsea", "coffee", "rocket", "logo"):  # colourful: a BGR swap shows
            swapped = np.abs(got[..., ::-1] - want).mean()
            assert swapped > 4 * error, (video, error, swapped)
        if video in ("camera", "camera16"):
            assert (got[..., 0] == got[..., 1]).all() and (got[..., 1] == got[..., 2]).all()
    # the astronaut's suit is white and the flag on her shoulder is red: R > B there in RGB order
    astronaut = np.asarray(cache.images[list(cache.manifest["video"]).index("astronaut")], dtype=np.float64)
    red = reference(expected["astronaut"], size)
    mask = (red[..., 0] > red[..., 2] + 60)
    assert mask.mean() > 0.01 and (astronaut[mask][:, 0] > astronaut[mask][:, 2]).mean() > 0.9


# ------------------------------------------------------------------------------------ resuming, parallel
def legacy_description(folder: Path):
    datasets = write_dataset(folder, format="purdue-legacy")
    return read_description(datasets / "mine.toml"), build_config(
        preset="quick", sets=[f"data.cache_dir={folder / 'cache'}"]).data


def test_an_interrupted_build_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    desc, data = legacy_description(tmp_path)
    manifest, images = domain()
    decoded: list[str] = []
    real = bench.data.build.load_frame

    def interrupted(path, **kwargs):
        decoded.append(path)
        if len(decoded) == 300:
            raise KeyboardInterrupt
        return real(path, **kwargs)

    monkeypatch.setattr(bench.data.build, "load_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_cache(desc, data, options=BuildOptions(workers=1, progress=False))
    path, _ = cache_path(desc, data)
    building = path.parent / f".{path.name}.building"
    assert not path.exists() and building.is_dir() and not (building / "COMPLETE").exists()
    assert cache_entries(tmp_path) == [building.name]  # no lock file left, nothing that looks finished
    ranges = [tuple(map(int, line.split())) for line in (building / "done.log").read_text().splitlines()]
    done = sum(stop - start for start, stop in ranges)
    assert 0 < done < 300
    with (building / "done.log").open("a") as log:
        log.write("400 5")  # a line cut short by a kill is ignored

    monkeypatch.setattr(bench.data.build, "load_frame", lambda path, **kw: (decoded.append(path), real(path, **kw))[1])
    decoded.clear()
    cache = ensure_cache(desc, data, options=BuildOptions(workers=1, progress=False))
    assert len(decoded) == len(manifest) - done  # only the missing rows were decoded again
    assert not building.exists() and (cache.path / "COMPLETE").exists()
    order = {s: i for i, s in enumerate(manifest["sample"])}
    assert np.array_equal(np.asarray(cache.images), images[[order[s] for s in cache.manifest["sample"]]])


def test_parallel_workers_resume_a_serial_build_and_give_the_same_cache(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    desc, data = legacy_description(tmp_path)
    calls = []
    real = bench.data.build.load_frame

    def interrupted(path, **kwargs):
        calls.append(path)
        if len(calls) == 150:
            raise KeyboardInterrupt
        return real(path, **kwargs)

    monkeypatch.setattr(bench.data.build, "load_frame", interrupted)
    with pytest.raises(KeyboardInterrupt):
        ensure_cache(desc, data, options=BuildOptions(workers=1, progress=False))
    monkeypatch.setattr(bench.data.build, "load_frame", real)
    cache = ensure_cache(desc, data, options=BuildOptions(workers=2, progress=False))  # two loky processes
    manifest, images = domain()
    order = {s: i for i, s in enumerate(manifest["sample"])}
    assert np.array_equal(np.asarray(cache.images), images[[order[s] for s in cache.manifest["sample"]]])


def test_ctrl_c_in_data_build_exits_130_and_the_rerun_finishes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="purdue-v2")
    real = bench.data.build.load_frame
    calls = []

    def interrupted(path, **kwargs):
        calls.append(path)
        if len(calls) == 200:
            raise KeyboardInterrupt
        return real(path, **kwargs)

    monkeypatch.setattr(bench.data.build, "load_frame", interrupted)
    assert cli("data", "build", "mine", "--workers", "1", *settings(tmp_path)) == 130
    assert "run the same command again to resume" in capsys.readouterr().err
    monkeypatch.setattr(bench.data.build, "load_frame", real)
    assert cli("data", "build", "mine", *settings(tmp_path)) == 0
    assert "504 frames at 32 px" in capsys.readouterr().out
    assert len(cache_entries(tmp_path)) == 1


# -------------------------------------------------------------------------------------------- --skip-bad
def test_unreadable_images_fail_the_build_unless_skip_bad_records_them(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="purdue-legacy")
    manifest, images = domain()
    broken = list(manifest["path"].iloc[[10, 400]])
    for path in broken:
        (tmp_path / "data" / path).write_bytes(b"\x89PNG\r\n\x1a\n not really")
    assert cli("data", "build", "mine", *settings(tmp_path)) == 2
    err = capsys.readouterr().err
    assert "2 unreadable image(s) in all" in err and "--skip-bad" in err and err.count("\n") == 1
    assert cache_entries(tmp_path) == []

    assert cli("data", "build", "mine", "--skip-bad", *settings(tmp_path)) == 0
    assert "2 unreadable image(s) left out (--skip-bad)" in capsys.readouterr().out
    (folder,) = (tmp_path / "cache").iterdir()
    cache = FrameCache.open(folder)
    assert len(cache.manifest) == len(manifest) - 2 and cache.meta["skipped"] == 2
    assert not set(broken) & set(cache.manifest["path"])
    skipped = pd.read_csv(folder / "skipped.csv")
    assert sorted(skipped["path"]) == sorted(broken) and skipped["reason"].str.contains("Pillow").all()
    order = {s: i for i, s in enumerate(manifest["sample"])}
    assert np.array_equal(np.asarray(cache.images), images[[order[s] for s in cache.manifest["sample"]]])


def test_a_missing_image_is_skipped_and_recorded_with_skip_bad(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    write_dataset(tmp_path, format="deepfakebench")
    missing = domain()[0]["path"].iat[3]
    (tmp_path / "data" / missing).unlink()
    assert cli("data", "build", "mine", "--skip-bad", *settings(tmp_path)) == 0
    (folder,) = (tmp_path / "cache").iterdir()
    skipped = pd.read_csv(folder / "skipped.csv")
    assert list(skipped["path"]) == [missing] and list(skipped["reason"]) == ["does not exist"]


# ---------------------------------------------------------------------------------- keys and job identity
def test_cache_key_follows_the_content_of_the_annotation_files(tmp_path: Path) -> None:
    datasets = write_dataset(tmp_path, format="purdue-legacy")
    run = build_config(preset="quick", sets=[f"data.datasets_dir={datasets}", f"data.cache_dir={tmp_path / 'c'}",
                                             "plan.methods=xception", "plan.train=mine", "plan.test=mine"])
    before, _ = cache_path(discover(run.data)["mine"], run.data)
    (job_before,) = make_plan(run)
    assert cache_path(discover(run.data)["mine"], run.data)[0] == before  # stable when nothing changed
    csv = tmp_path / "data" / "test.csv"
    lines = csv.read_text().split("\n")
    lines[1], lines[2] = lines[2], lines[1]  # the same rows in another order: another file
    csv.write_text("\n".join(lines))
    after, key = cache_path(discover(run.data)["mine"], run.data)
    (job_after,) = make_plan(run)
    assert after != before and job_after.job_id != job_before.job_id
    assert key["annotations"][str(csv)] == hashlib.sha256(csv.read_bytes()).hexdigest()
    assert key["root"] == str((tmp_path / "data").resolve()) and key["image_size"] == 32


# ----------------------------------------------------------------- the shipped real-dataset descriptions
def test_shipped_descriptions_run_the_protocol_once_the_data_is_on_disk(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """ffpp, celebdf, dfd and dfdc as shipped, pointed at generated data in the PG-FDD layout (only the
    identity pattern, which follows real video names, and the cache size are changed)."""
    names = {"ffpp": ("ff", {}), "celebdf": ("celebdf", {"six_groups": True}), "dfd": ("dfd", {"six_groups": True}),
             "dfdc": ("dfdc", {})}
    datasets = tmp_path / "datasets"
    datasets.mkdir()
    for name, (profile, writer) in names.items():
        manifest, images = domain(profile, 32, 0.1)
        root = tmp_path / name
        bench.data.synthetic.write_published(manifest, images, root, format="purdue-legacy",
                                             path_prefix="/home/authors/crops/", **writer)
        text = (REPO / "datasets" / f"{name}.toml").read_text()
        text = re.sub(r"(?m)^identity_pattern = .*$", lambda _: PATTERN, text)
        if "identity_pattern" not in text:  # dfdc: each video is its own identity
            text = text.replace('path_prefix = "auto"', f'path_prefix = "auto"\n{PATTERN}')
        (datasets / f"{name}.toml").write_text(text.replace("image_size = 256", "image_size = 32"))
        monkeypatch.setenv(f"{name.upper()}_ROOT", str(root))
    assert cli("list", "datasets") == 0
    listing = capsys.readouterr().out
    assert "ffpp" in listing and "FFPP_ROOT is not set" not in listing
    code = cli("run", "--preset", "quick", "--methods", "xception", "--train", "ffpp", "--test", "all",
               "--set", "train.epochs=1", "--out", str(tmp_path / "results"), *settings(tmp_path))
    assert code == 0, capsys.readouterr().err
    (job,) = (tmp_path / "results" / "runs").iterdir()
    assert sorted(p.name for p in (job / "predictions").iterdir()) == [f"{n}.csv.gz" for n in sorted(names)]
    config = json.loads((job / "config.json").read_text())
    assert config["job"]["train"] == "ffpp"
    celebdf = FrameCache.open(next(p for p in (tmp_path / "cache").iterdir() if p.name.startswith("celebdf-")))
    assert any("Asian is merged into Others" in n for n in celebdf.notes)
    assert not (celebdf.manifest["race"] == 0).any()
    assert canonical(celebdf.manifest).drop(columns=["race", "intersection"]).equals(
        canonical(domain("celebdf", 32, 0.1)[0][lambda m: m["split"] == "test"]).drop(columns=["race", "intersection"]))
