"""The synthetic benchmark generator: determinism, schema, splits, profiles and the bias knobs (no training)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench.data import synthetic
from bench.data.synthetic import (
    MANIFEST_COLUMNS,
    MANIPULATIONS,
    PROFILES,
    SyntheticSpec,
    generate,
    without_bias,
)
from bench.errors import ConfigError

INT_COLUMNS = ("label", "manipulation", "gender", "race", "intersection", "true_gender", "true_race",
               "true_intersection")  # fmt: skip
STR_COLUMNS = ("sample", "path", "video", "identity", "split")
REPO = Path(__file__).resolve().parents[1]

# A small domain (16 identities per split, 1 frame per video) for checks of statistics.
SMALL = SyntheticSpec(name="test-small", identities=(16, 16, 16), videos_per_identity=5, frames_per_video=1)


@pytest.fixture(scope="module")
def ff32() -> tuple[pd.DataFrame, np.ndarray]:
    return generate(PROFILES["ff"], image_size=32, seed=7, scale=0.15, test_scale=0.2)


def _digest(images: np.ndarray) -> str:
    return hashlib.sha256(images.tobytes()).hexdigest()


def _per_video(manifest: pd.DataFrame) -> pd.DataFrame:
    return manifest.drop_duplicates("video")


# --- determinism ----------------------------------------------------------------------------------------


def test_same_arguments_give_the_same_bytes_and_manifest(ff32):
    manifest, images = generate(PROFILES["ff"], image_size=32, seed=7, scale=0.15, test_scale=0.2)
    pd.testing.assert_frame_equal(manifest, ff32[0])
    assert images.tobytes() == ff32[1].tobytes()


def test_a_different_seed_gives_different_images():
    _, a = generate(SMALL, image_size=16, seed=0)
    _, b = generate(SMALL, image_size=16, seed=1)
    assert a.shape == b.shape and a.tobytes() != b.tobytes()


def test_domains_with_the_same_seed_do_not_share_faces():
    a = dataclasses.replace(SMALL, name="one")
    b = dataclasses.replace(SMALL, name="two")
    assert generate(a, image_size=16, seed=0)[1].tobytes() != generate(b, image_size=16, seed=0)[1].tobytes()


def test_images_do_not_depend_on_chunking(monkeypatch):
    _, whole = generate(SMALL, image_size=24, seed=3, scale=0.5)
    monkeypatch.setattr(synthetic, "_chunks", lambda n, f, s: [range(k, k + 1) for k in range(n)])
    _, one_video_at_a_time = generate(SMALL, image_size=24, seed=3, scale=0.5)
    assert whole.tobytes() == one_video_at_a_time.tobytes()


def test_images_do_not_depend_on_thread_counts():
    code = (
        "import hashlib; from bench.data.synthetic import PROFILES, generate; "
        "_, x = generate(PROFILES['dfdc'], image_size=32, seed=5, scale=0.05, test_scale=0.1); "
        "print(hashlib.sha256(x.tobytes()).hexdigest())"
    )
    threads = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    env = {**os.environ, **dict.fromkeys(threads, "1"), "PYTHONPATH": str(REPO)}
    single = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    _, here = generate(PROFILES["dfdc"], image_size=32, seed=5, scale=0.05, test_scale=0.1)
    assert single.stdout.strip() == _digest(here)


# --- schema -----------------------------------------------------------------------------------------------


def test_manifest_schema_and_dtypes(ff32):
    manifest, images = ff32
    assert tuple(manifest.columns) == MANIFEST_COLUMNS
    for column in INT_COLUMNS:
        assert manifest[column].dtype == np.int64, column
    for column in STR_COLUMNS:
        assert manifest[column].dtype == object, column
        assert all(type(v) is str for v in manifest[column]), column
    assert images.dtype == np.uint8 and images.flags.c_contiguous
    assert images.shape == (len(manifest), 32, 32, 3)


def test_manifest_values_are_consistent(ff32):
    manifest, _ = ff32
    assert manifest["sample"].is_unique and manifest["path"].is_unique
    assert set(manifest["split"]) == {"train", "val", "test"}
    assert set(manifest["label"]) == {0, 1}
    assert ((manifest.label == 0) == (manifest.manipulation == 0)).all()
    for prefix in ("", "true_"):
        group = manifest[f"{prefix}intersection"]
        assert group.between(0, 7).all()
        assert (group == manifest[f"{prefix}gender"] * 4 + manifest[f"{prefix}race"]).all()
    frame = manifest.groupby("video").cumcount()
    expected = [f"{v}/{f:03d}.png" for v, f in zip(manifest.video, frame, strict=True)]
    assert manifest["path"].tolist() == expected
    assert not manifest["path"].str.contains("\\\\", regex=False).any()


def test_splits_are_identity_disjoint_and_non_empty(ff32):
    manifest, _ = ff32
    splits_per_identity = manifest.groupby("identity")["split"].nunique()
    assert (splits_per_identity == 1).all()
    assert manifest.split.value_counts().min() > 0


def test_video_ids_are_unique_and_name_the_manipulation(ff32):
    manifest, _ = ff32
    per_video = manifest.groupby("video").agg(
        identity=("identity", "nunique"), label=("label", "nunique"), manipulation=("manipulation", "nunique"),
        frames=("sample", "size"),
    )  # fmt: skip
    assert (per_video[["identity", "label", "manipulation"]] == 1).all().all()
    assert (per_video.frames == PROFILES["ff"].frames_per_video).all()
    videos = _per_video(manifest)
    for video, identity, label, manipulation in videos[["video", "identity", "label", "manipulation"]].values:
        assert video.startswith(identity + "_v")
        if label:
            name = PROFILES["ff"].manipulations[manipulation - 1]
            assert f"__{name}__id" in video
        else:
            assert "__" not in video


def test_fakes_are_made_from_real_videos_of_their_target(ff32):
    manifest, images = ff32
    videos = _per_video(manifest)
    rows = np.flatnonzero((manifest.label == 1).to_numpy())
    identities_with_reals = set(videos.identity[videos.label == 0])
    assert any(manifest.identity.iloc[r] in identities_with_reals for r in rows)
    # a fake frame is closer to some real frame of its identity than real frames of other identities are
    r = next(r for r in rows if manifest.identity.iloc[r] in identities_with_reals)
    same = np.flatnonzero(((manifest.identity == manifest.identity.iloc[r]) & (manifest.label == 0)).to_numpy())
    other = np.flatnonzero(((manifest.identity != manifest.identity.iloc[r]) & (manifest.label == 0)).to_numpy())
    distance = np.abs(images[:, None].astype(int) - images[r].astype(int)).mean(axis=(1, 2, 3, 4))
    assert distance[same].min() < distance[other].min()


# --- profiles, sizes and scale -----------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "size"), [(name, 32) for name in sorted(PROFILES)]
                         + [(name, 64) for name in sorted(PROFILES) if not name.endswith("-shortcut")])
def test_every_profile_generates(name, size):
    manifest, images = generate(PROFILES[name], image_size=size, seed=0, scale=0.05, test_scale=0.1)
    assert images.shape == (len(manifest), size, size, 3)
    assert set(manifest.split) == {"train", "val", "test"}
    assert 0 < images.mean() < 255


@pytest.mark.parametrize("size", [16, 17, 45, 256])
def test_odd_and_extreme_sizes(size):
    spec = dataclasses.replace(PROFILES["dfdc"], videos_per_identity=2, frames_per_video=1)
    manifest, images = generate(spec, image_size=size, seed=0, scale=0.01)
    assert images.shape == (len(manifest), size, size, 3)


def test_profiles_are_json_serialisable_and_sized_for_a_cpu():
    for name, spec in PROFILES.items():
        assert json.loads(json.dumps(dataclasses.asdict(spec))) is not None
        frames_per_identity = spec.videos_per_identity * spec.frames_per_video
        assert 1_500 <= spec.identities[0] * frames_per_identity <= 3_000, name
        assert 1_900 <= spec.identities[2] * frames_per_identity <= 40_000, name


def test_calibration_keeps_the_training_splits_and_everything_physical():
    """Only the group mix, the fake shares and the test split's size differ from the shortcut world."""
    calibrated = {"group_mix", "fake_rate", "identities", "name"}
    for name in ("ff", "celebdf", "dfd", "dfdc"):
        spec, shortcut = PROFILES[name], PROFILES[f"{name}-shortcut"]
        assert spec.identities[:2] == shortcut.identities[:2], name
        assert spec.identities[2] > shortcut.identities[2], name
        for field in dataclasses.fields(SyntheticSpec):
            if field.name not in calibrated:
                assert getattr(spec, field.name) == getattr(shortcut, field.name), (name, field.name)


def test_a_spec_survives_a_json_round_trip():
    for spec in PROFILES.values():
        again = SyntheticSpec(**json.loads(json.dumps(dataclasses.asdict(spec))))
        assert again == spec and hash(again) == hash(spec)


def test_scale_shrinks_the_domain_and_keeps_every_split():
    spec = PROFILES["celebdf"]
    small, _ = generate(spec, image_size=16, seed=0, scale=0.25)
    tiny, _ = generate(spec, image_size=16, seed=0, scale=0.001)
    per_identity = spec.videos_per_identity * spec.frames_per_video
    assert len(small) == sum(round(n * 0.25) for n in spec.identities) * per_identity
    assert len(tiny) == 3 * per_identity
    assert set(tiny.split) == {"train", "val", "test"}


# --- the bias knobs -------------------------------------------------------------------------------------


def test_ff_like_mix_is_mostly_white_and_about_half_female():
    mix = np.asarray(PROFILES["ff"].group_mix)
    assert mix[[1, 5]].sum() >= 0.5
    assert 0.4 <= mix[4:].sum() <= 0.6


def test_fake_rate_per_group_follows_the_spec():
    spec = dataclasses.replace(SMALL, fake_rate=(0.2, 0.8, 0.4, 0.6, 0.2, 0.8, 0.4, 0.6))
    manifest, _ = generate(spec, image_size=16, seed=0, scale=4.0)
    rate = manifest.groupby("true_intersection").label.mean()
    np.testing.assert_allclose(rate.to_numpy(), spec.fake_rate, atol=0.02)


def test_without_bias_equalises_mix_fake_rate_and_visibility():
    control = without_bias(PROFILES["ff"])
    assert control.group_mix == synthetic.UNIFORM_MIX
    assert len(set(control.fake_rate)) == 1 and len(set(control.artifact_visibility)) == 1
    assert control.group_label_noise == 0.0 and control.name != PROFILES["ff"].name
    assert without_bias(control) == control
    manifest, _ = generate(control, image_size=16, seed=0, scale=0.5, test_scale=0.2)
    for _, split in manifest.groupby("split"):
        identities = split.drop_duplicates("identity").true_intersection.value_counts()
        assert len(identities) == 8 and identities.max() - identities.min() <= 1
        rate = split.groupby("true_intersection").label.mean()
        assert rate.max() - rate.min() < 0.05
    assert (manifest.intersection == manifest.true_intersection).all()


def test_shortcut_profile_has_a_group_to_label_shortcut():
    manifest, _ = generate(PROFILES["ff-shortcut"], image_size=16, seed=0, scale=0.5)
    rate = manifest.groupby("true_intersection").label.mean()
    assert rate.max() - rate.min() > 0.3


def test_dfdc_shortcut_reverses_the_ff_shortcut():
    ff, dfdc = np.asarray(PROFILES["ff-shortcut"].fake_rate), np.asarray(PROFILES["dfdc-shortcut"].fake_rate)
    assert np.corrcoef(ff, dfdc)[0, 1] < -0.9


def test_label_noise_flips_the_stored_annotation_at_the_set_rate():
    spec = dataclasses.replace(SMALL, group_label_noise=0.2)
    manifest, _ = generate(spec, image_size=16, seed=0, scale=2.0)
    videos = _per_video(manifest)
    flipped = (videos.intersection != videos.true_intersection).mean()
    assert 0.15 <= flipped <= 0.25
    clean, _ = generate(dataclasses.replace(spec, group_label_noise=0.0), image_size=16, seed=0, scale=2.0)
    pd.testing.assert_series_equal(manifest.true_intersection, clean.true_intersection)
    assert (clean.intersection == clean.true_intersection).all()


def test_dfdc_has_the_unseen_manipulation_and_ff_does_not():
    dfdc, _ = generate(PROFILES["dfdc"], image_size=16, seed=0, scale=0.1, test_scale=0.1)
    ff, _ = generate(PROFILES["ff"], image_size=16, seed=0, scale=0.1, test_scale=0.1)
    assert dfdc.video.str.contains("__noise-mismatch__").any()
    assert not ff.video.str.contains("noise-mismatch").any()
    assert "noise-mismatch" not in PROFILES["ff"].manipulations
    assert set(dfdc.manipulation) == {0, 1}  # DFDC-like keeps no manipulation labels
    assert set(ff.manipulation) == set(range(len(PROFILES["ff"].manipulations) + 1))


def test_celebdf_uses_soft_colour_corrected_blends_only():
    spec = PROFILES["celebdf"]
    assert spec.manipulations == ("blend",)
    assert spec.blend_colour_correction > PROFILES["ff"].blend_colour_correction
    assert spec.blend_softness > PROFILES["ff"].blend_softness


def test_every_manipulation_changes_the_inner_face_only():
    base = dataclasses.replace(SMALL, identities=(2, 1, 1), videos_per_identity=2, fake_rate=(0.5,) * 8,
                               camera_noise=0.0, compression_quality=100)  # fmt: skip
    for name in MANIPULATIONS:
        spec = dataclasses.replace(base, manipulations=(name,), manipulation_weights=(1.0,))
        manifest, images = generate(spec, image_size=48, seed=0)
        fakes = manifest.index[manifest.label == 1]
        assert len(fakes), name
        for f in fakes:
            video = manifest.video[f]
            identity = manifest.identity[f]
            reals = manifest.index[(manifest.identity == identity) & (manifest.label == 0)]
            if not len(reals):
                continue
            diff = np.abs(images[f].astype(int) - images[reals].astype(int)).sum(axis=-1).min(axis=0)
            assert diff.max() > 10, video  # there is an artifact
            assert diff[:4].max() <= 2 and diff[-4:].max() <= 2, video  # top and bottom rows untouched


# --- validation -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"group_mix": (0.5,) * 8},
        {"fake_rate": (0.5,) * 7},
        {"manipulations": ("blend", "deepfake")},
        {"manipulation_weights": (1.0,)},
        {"identities": (10, 0, 10)},
        {"compression_quality": 0},
        {"group_label_noise": 1.5},
    ],
)
def test_invalid_specs_name_the_field(change):
    field = next(iter(change))
    with pytest.raises(ConfigError, match=field):
        dataclasses.replace(SMALL, **change)


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [({"image_size": 8}, "image_size"), ({"image_size": 300}, "image_size"), ({"seed": -1}, "seed"),
     ({"scale": 0}, "scale")],
)  # fmt: skip
def test_invalid_arguments_are_refused(kwargs, word):
    arguments = {"image_size": 16, "seed": 0, "scale": 1.0, **kwargs}
    with pytest.raises(ConfigError, match=word):
        generate(SMALL, **arguments)
