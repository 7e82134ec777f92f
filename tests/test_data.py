"""The manifest schema, dataset descriptions, the frame cache and the loaders."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from bench.config import build_config
from bench.data.cache import FrameCache, cache_path, ensure_cache
from bench.data.datasets import discover, read_description, select_datasets
from bench.data.loader import DeviceLoader, PairedSampler, StandardSampler, sequential
from bench.data.manifest import COLUMNS, manifest_hash, validate_manifest
from bench.errors import DataError, UnknownNameError

QUICK = build_config(preset="quick").data


def manifest(**changes) -> pd.DataFrame:
    frame = pd.DataFrame({
        "sample": ["a0", "a1", "b0", "b1"], "path": ["a/0.png", "a/1.png", "b/0.png", "b/1.png"],
        "video": ["a", "a", "b__blend", "b__blend"], "identity": ["p1", "p1", "p2", "p2"],
        "split": ["train", "train", "test", "test"], "label": [0, 0, 1, 1], "manipulation": [0, 0, 1, 1],
        "gender": [0, 0, 1, -1], "race": [1, 1, 2, -1], "intersection": [1, 1, 6, -1],
    })
    for key, value in changes.items():
        frame[key] = value
    return frame


def test_valid_manifest_gets_canonical_dtypes() -> None:
    out = validate_manifest(manifest(label=["0", "0", "1", "1"]), source="t.csv")
    assert list(out.columns) == list(COLUMNS)
    assert out["label"].dtype == np.int64


@pytest.mark.parametrize(("changes", "message"), [
    ({"label": [0, 2, 1, 1]}, "t.csv: row 2, column 'label': expected one of 0, 1, got 2"),
    ({"split": ["train", "dev", "test", "test"]}, "row 2, column 'split': expected one of train, val, test"),
    ({"intersection": [1, 1, 5, -1]}, "row 3, column 'intersection': expected gender*4 + race, got 5"),
    ({"manipulation": [0, 1, 1, 1]}, "row 2, column 'manipulation': expected 0 for a real frame"),
    ({"manipulation": [0, 0, 0, 1]}, "row 3, column 'manipulation': expected 1..K for a fake frame"),
    ({"path": ["a\\0.png", "a/1.png", "b/0.png", "b/1.png"]}, "row 1, column 'path': expected POSIX"),
    ({"sample": ["a0", "a0", "b0", "b1"]}, "row 2, column 'sample': expected a unique id"),
    ({"gender": [0, "x", 1, -1]}, "row 2, column 'gender': expected a whole number, got 'x'"),
    ({"race": [1, 1.5, 2, -1]}, "row 2, column 'race': expected a whole number"),
])
def test_bad_rows_name_file_row_and_column(changes: dict, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        validate_manifest(manifest(**changes), source="t.csv")


def test_missing_column_is_named() -> None:
    with pytest.raises(DataError, match=re.escape("t.csv: missing column(s) race")):
        validate_manifest(manifest().drop(columns="race"), source="t.csv")


def test_manifest_hash_follows_content() -> None:
    a = validate_manifest(manifest(), source="t")
    b = validate_manifest(manifest(label=[0, 0, 1, 1]), source="t")
    c = validate_manifest(manifest(identity=["p1", "p1", "p3", "p3"]), source="t")
    assert manifest_hash(a) == manifest_hash(b) != manifest_hash(c)


def test_shipped_descriptions_and_selection() -> None:
    found = discover(QUICK)
    assert list(found)[:5] == ["synth-ff", "synth-celebdf", "synth-dfd", "synth-dfdc", "synth-ff-nobias"]
    assert found["synth-ff-nobias"].control_for == "synth-ff"
    assert select_datasets("all", found, all_means=["synthetic"]) == ["synth-ff", "synth-celebdf", "synth-dfd",
                                                                      "synth-dfdc"]
    assert select_datasets("synth-d*", found, all_means=["synthetic"]) == ["synth-dfd", "synth-dfdc",
                                                                          "synth-dfd-shortcut", "synth-dfdc-shortcut"]
    assert select_datasets("control", found, all_means=["synthetic"]) == ["synth-ff-nobias",
                                                                          "synth-ff-shortcut-nobias"]
    with pytest.raises(UnknownNameError, match=re.escape("Unknown dataset 'synth-fff'. Did you mean 'synth-ff'")):
        select_datasets("synth-fff", found, all_means=["synthetic"])


def test_bad_descriptions(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text('format = "synthetic"\nprofile = "ff"\ncolour = 3\n')
    desc = read_description(tmp_path / "x.toml")
    with pytest.raises(DataError, match="unknown key\\(s\\) colour"):
        ensure_cache(desc, QUICK)
    (tmp_path / "y.toml").write_text('format = "jpegs"\n')
    with pytest.raises(UnknownNameError, match="Unknown dataset format 'jpegs'"):
        read_description(tmp_path / "y.toml")
    (tmp_path / "z.toml").write_text('format = "synthetic"\nprofile = "ffpp"\n')
    with pytest.raises(DataError, match="profile must be one of ff, celebdf, dfd, dfdc, ff-shortcut, "
                                        "celebdf-shortcut, dfd-shortcut, dfdc-shortcut; got 'ffpp'"):
        ensure_cache(read_description(tmp_path / "z.toml"), QUICK)


def test_cache_is_built_once_and_rebuilt_when_its_description_changes(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text('format = "synthetic"\nprofile = "dfd"\nseed = 5\n')
    data = build_config(preset="quick", sets=["data.synthetic_scale=0.1"]).data
    cache = ensure_cache(read_description(path), data)
    stamp = (cache.path / "COMPLETE").stat().st_mtime_ns
    again = ensure_cache(read_description(path), data)
    assert again.path == cache.path and (again.path / "COMPLETE").stat().st_mtime_ns == stamp
    assert again.images.dtype == np.uint8 and again.images.shape[1:] == (32, 32, 3)
    assert isinstance(again.images, np.memmap)
    assert again.manifest_hash == manifest_hash(again.manifest)
    path.write_text('format = "synthetic"\nprofile = "dfd"\nseed = 6\n')
    changed, _ = cache_path(read_description(path), data)
    assert changed != cache.path
    bigger, _ = cache_path(read_description(path), build_config(preset="default").data)
    assert bigger != changed


@pytest.fixture(scope="module")
def cache() -> FrameCache:
    return ensure_cache(discover(QUICK)["synth-ff"], QUICK)


def test_paired_sampler_pairs_reals_with_fakes(cache: FrameCache) -> None:
    real, fake = cache.rows("train", label=0), cache.rows("train", label=1)
    sampler = PairedSampler(real, fake, batch_size=16)
    assert len(sampler) == len(fake) // 16
    batches = list(sampler.epoch([0, 0]))
    assert len(batches) == len(sampler)
    labels = cache.manifest["label"].to_numpy()
    for rows in batches:
        assert (labels[rows[:16]] == 0).all() and (labels[rows[16:]] == 1).all()
    seen = np.concatenate([b[16:] for b in batches])
    assert len(np.unique(seen)) == len(seen)  # one pass over the fakes, without repeats
    again = list(sampler.epoch([0, 0]))
    assert all((a == b).all() for a, b in zip(batches, again, strict=True))
    other = list(sampler.epoch([0, 1]))
    assert not all((a == b).all() for a, b in zip(batches, other, strict=True))


def test_standard_sampler_and_sequential(cache: FrameCache) -> None:
    rows = cache.rows("train")
    sampler = StandardSampler(rows, batch_size=10, steps=3)
    assert [len(b) for b in sampler.epoch(1)] == [10, 10, 10]
    chunks = list(sequential(rows, 100))
    assert np.array_equal(np.concatenate(chunks), rows)


def test_device_loader_normalises_to_minus_one_one(cache: FrameCache) -> None:
    loader = DeviceLoader(cache, device=torch.device("cpu"), channels_last=True)
    rows = cache.rows("val")[:8]
    (batch,) = list(loader.batches([rows]))
    assert batch.images.shape == (8, 3, 32, 32) and batch.images.dtype == torch.float32
    assert batch.images.is_contiguous(memory_format=torch.channels_last)
    raw = torch.from_numpy(np.asarray(cache.images[rows])).permute(0, 3, 1, 2).float()
    assert torch.allclose(batch.images, raw / 127.5 - 1.0, atol=1e-6)
    assert torch.equal(batch.label, torch.from_numpy(cache.manifest["label"].to_numpy()[rows]))
    assert torch.equal(batch.group, torch.from_numpy(cache.manifest["intersection"].to_numpy()[rows]))
