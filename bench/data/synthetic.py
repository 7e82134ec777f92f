"""The embedded default benchmark: procedurally generated face-like deepfake domains (docs/DATA.md).

Each domain is a few thousand small RGB frames of made-up people, deterministic from a seed, with the
structure that makes deepfake detectors unfair and makes that unfairness come back under domain shift:

* Identities belong to one of 8 gender x race groups (intersection = gender * 4 + race; gender 0 male,
  1 female; race 0 Asian, 1 White, 2 Black, 3 Others). Appearance depends on the group without
  determining it: skin tone from overlapping per-race ranges, hair length, jaw and brows as gender cues,
  identity-specific eyes, nose, mouth and background. Each identity has several videos (pose, scale and
  lighting per video) of several frames (jitter, blinks, mouth movement).
* A fake video takes a real video of its target identity (like FF++: same pose, lighting, frame jitter and
  sensor noise, so real and fake differ by the manipulation only) and a source identity (from another group
  with probability ``cross_group_swap_rate``), and applies one manipulation whose artifact sits in the inner
  face region: ``blend`` (source face pasted with a feathered mask: residual colour mismatch that grows with the
  skin-tone difference, lighting mismatch, a smoother pasted face; Face X-ray, SBI), ``upsample``
  (resolution loss plus the periodic checkerboard of zero-insertion upsampling; Odena et al., Durall et
  al.), ``warp-blur`` (resolution mismatch of the face; FWA), ``colour`` (local colour and contrast
  shift), ``noise-mismatch`` (the face carries different, spatially correlated sensor noise; meant as the
  manipulation no training domain shows).
* Order of the pipeline: render -> camera of the domain (blur, white balance, gamma, sensor noise) ->
  manipulation (fakes only; it works on captured frames, so it can change the sensor noise of the face) ->
  compression of the domain (JPEG-like 8x8 block-DCT quantisation) -> uint8.
* Bias knobs, each of which can be switched off (`without_bias`): the group mix; the fake rate per group
  (a shortcut from appearance to label); the artifact visibility per group (multiplies the strength of
  every artifact); label noise on the stored group annotation (the truth is kept for analysis).
  Everything else (artifact amplitudes in absolute intensity, masks, noise) is the same for every skin
  tone, so with the knobs off no group is easier than another.

`generate` draws every random number from `numpy.random.Generator` objects seeded through
`numpy.random.SeedSequence` with explicit spawn keys (per identity, video and purpose), so the result does
not depend on the order of evaluation, the chunking or the number of threads.
"""

from __future__ import annotations

import dataclasses
import json
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from bench.errors import ConfigError
from bench.groups import INTERSECTIONS, NUM_INTERSECTIONS, intersection, to_six_groups

GROUPS = INTERSECTIONS
N_GROUPS = NUM_INTERSECTIONS
SPLITS = ("train", "val", "test")
MANIPULATIONS = ("blend", "upsample", "warp-blur", "colour", "noise-mismatch")
UNIFORM_MIX = (0.125,) * N_GROUPS
MIN_IMAGE_SIZE = 16
MAX_IMAGE_SIZE = 256
MANIFEST_COLUMNS = (
    "sample", "path", "video", "identity", "split", "label", "manipulation",
    "gender", "race", "intersection", "true_gender", "true_race", "true_intersection",
)  # fmt: skip


@dataclass(frozen=True)
class SyntheticSpec:
    """Every knob of one synthetic domain; plain JSON types so `dataclasses.asdict` can be hashed.

    Per-group tuples have 8 entries in intersection order (see `GROUPS`). Lengths in "px@64" are pixels
    of a 64-pixel image and scale with the image size; intensities are on a 0-1 scale.
    """

    # Domain name; with the seed it picks the random stream, so two domains never share faces.
    name: str = "synth"
    # --- size ---
    # Identities per split (train, val, test); splits are identity-disjoint.
    identities: tuple[int, int, int] = (80, 20, 112)
    # Videos per identity (each one real or one fake; a fake reuses the capture of a real video of its
    # identity, like FF++) and frames per video.
    videos_per_identity: int = 12
    frames_per_video: int = 2
    # Each group with a positive mix gets at least this many identities per split (if the split is big enough).
    min_identities_per_group: int = 1
    # --- demographics and bias knobs ---
    # Share of identities per group (sums to 1).
    group_mix: tuple[float, ...] = UNIFORM_MIX
    # Share of each group's videos that are fake: the group -> label shortcut when it varies by group.
    fake_rate: tuple[float, ...] = (0.5,) * N_GROUPS
    # Multiplies every artifact of fakes whose target is in the group (hair over the seam, skin tone, ...).
    artifact_visibility: tuple[float, ...] = (1.0,) * N_GROUPS
    # Probability that a video's stored group annotation is wrong (a uniformly drawn other group).
    group_label_noise: float = 0.0
    # Probability that a fake's source identity comes from another group than its target.
    cross_group_swap_rate: float = 0.5
    # --- manipulations ---
    # Manipulations used, by name (see `MANIPULATIONS`), and their relative frequencies.
    manipulations: tuple[str, ...] = ("blend", "upsample", "warp-blur", "colour")
    manipulation_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.0)
    # Keep manipulation labels 1..K in the manifest; when False every fake is labelled 1.
    keep_manipulation_labels: bool = True
    # Global multiplier of every artifact's strength.
    artifact_strength: float = 1.0
    # Width of the feathered edge of the inner-face mask, in units of the head's half-width.
    blend_softness: float = 0.15
    # Share of the source-target colour difference a blend corrects (1: perfect colour transfer).
    blend_colour_correction: float = 0.5
    # --- capture ---
    # Multipliers of the per-video and per-frame pose variation and of the lighting variation.
    pose_variation: float = 1.0
    lighting_variation: float = 1.0
    # Camera: Gaussian blur sigma (px@64), per-channel gains, gamma exponent, sensor noise std.
    camera_blur: float = 0.5
    camera_white_balance: tuple[float, float, float] = (1.0, 1.0, 1.0)
    camera_gamma: float = 1.0
    camera_noise: float = 0.01
    # JPEG-like compression: quality 1-100 (IJG tables), and 4:2:0 chroma subsampling.
    compression_quality: int = 85
    compression_chroma_subsampling: bool = False

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):  # lists from a TOML or JSON file become hashable tuples
            if isinstance(getattr(self, field.name), list):
                object.__setattr__(self, field.name, tuple(getattr(self, field.name)))
        _validate(self)


def _validate(spec: SyntheticSpec) -> None:
    """Raise `ConfigError` naming the first invalid field of `spec`."""

    def fail(field_name: str, expected: str) -> None:
        value = getattr(spec, field_name)
        raise ConfigError(f"SyntheticSpec({spec.name!r}).{field_name} = {value!r}: expected {expected}.")

    if len(spec.identities) != 3 or any(int(n) != n or n < 1 for n in spec.identities):
        fail("identities", "three positive integers (train, val, test)")
    for name in ("videos_per_identity", "frames_per_video"):
        if int(getattr(spec, name)) != getattr(spec, name) or getattr(spec, name) < 1:
            fail(name, "a positive integer")
    if int(spec.min_identities_per_group) != spec.min_identities_per_group or spec.min_identities_per_group < 0:
        fail("min_identities_per_group", "a non-negative integer")
    for name, low, high in (("group_mix", 0, 1), ("fake_rate", 0, 1), ("artifact_visibility", 0, 10)):
        values = getattr(spec, name)
        if len(values) != N_GROUPS or not all(low <= v <= high for v in values):
            fail(name, f"{N_GROUPS} numbers in [{low}, {high}], one per group {GROUPS}")
    if abs(sum(spec.group_mix) - 1.0) > 1e-6:
        fail("group_mix", "probabilities that sum to 1")
    for name in ("group_label_noise", "cross_group_swap_rate", "blend_colour_correction"):
        if not 0.0 <= getattr(spec, name) <= 1.0:
            fail(name, "a number in [0, 1]")
    if not spec.manipulations or any(m not in MANIPULATIONS for m in spec.manipulations):
        fail("manipulations", f"a non-empty tuple of names from {MANIPULATIONS}")
    if len(set(spec.manipulations)) != len(spec.manipulations):
        fail("manipulations", "names without repeats")
    weights = spec.manipulation_weights
    if len(weights) != len(spec.manipulations) or min(weights) < 0 or sum(weights) <= 0:
        fail("manipulation_weights", "one non-negative weight per manipulation, not all zero")
    for name in ("artifact_strength", "blend_softness", "pose_variation", "lighting_variation",
                 "camera_blur", "camera_noise"):  # fmt: skip
        if getattr(spec, name) < 0:
            fail(name, "a non-negative number")
    if len(spec.camera_white_balance) != 3 or min(spec.camera_white_balance) <= 0:
        fail("camera_white_balance", "three positive channel gains (R, G, B)")
    if spec.camera_gamma <= 0:
        fail("camera_gamma", "a positive number")
    if not 1 <= spec.compression_quality <= 100:
        fail("compression_quality", "an integer in [1, 100]")


# ---------------------------------------------------------------------------------------------------------
# The four domains shaped like the real datasets.

# Fake rates of the FF++-like domain; the DFDC-like domain mirrors them (min + max - rate) so the
# group -> label shortcut a detector learns on FF points the wrong way there.
_FF_FAKE_RATE = (0.55, 0.35, 0.85, 0.65, 0.50, 0.30, 0.80, 0.60)
# Artifact visibility per group (weaker colour seams on darker skin, hair over the boundary, ...).
_FF_VISIBILITY = (0.9, 1.0, 0.3, 0.6, 0.8, 0.9, 0.25, 0.5)


def _mirrored(rates: Sequence[float]) -> tuple[float, ...]:
    low, high = min(rates), max(rates)
    return tuple(round(low + high - r, 6) for r in rates)


PROFILES: dict[str, SyntheticSpec] = {
    # FF++-like training domain: mostly White, about half female, four manipulations with labels,
    # mild compression (c23-like), some annotation noise.
    "ff": SyntheticSpec(
        name="synth-ff",
        identities=(80, 20, 112),
        videos_per_identity=12,
        frames_per_video=2,
        group_mix=(0.07, 0.27, 0.08, 0.06, 0.08, 0.26, 0.10, 0.08),
        fake_rate=_FF_FAKE_RATE,
        artifact_visibility=_FF_VISIBILITY,
        group_label_noise=0.05,
        cross_group_swap_rate=0.5,
        manipulations=("blend", "upsample", "warp-blur", "colour"),
        manipulation_weights=(1.0, 1.0, 1.0, 1.0),
        keep_manipulation_labels=True,
        blend_softness=0.15,
        blend_colour_correction=0.5,
        camera_blur=0.5,
        camera_noise=0.01,
        compression_quality=85,
    ),
    # Celeb-DF-like: soft, colour-corrected blends only, few identities with many videos, very skewed
    # demographics, most videos fake.
    "celebdf": SyntheticSpec(
        name="synth-celebdf",
        identities=(32, 8, 40),
        videos_per_identity=10,
        frames_per_video=5,
        group_mix=(0.02, 0.50, 0.08, 0.02, 0.02, 0.30, 0.04, 0.02),
        fake_rate=(0.8, 0.75, 0.85, 0.8, 0.8, 0.75, 0.85, 0.8),
        artifact_visibility=(1.0, 1.0, 0.6, 0.8, 0.9, 0.9, 0.5, 0.7),
        group_label_noise=0.05,
        cross_group_swap_rate=0.3,
        manipulations=("blend",),
        manipulation_weights=(1.0,),
        keep_manipulation_labels=True,
        blend_softness=0.3,
        blend_colour_correction=0.85,
        camera_blur=0.6,
        camera_noise=0.012,
        compression_quality=75,
    ),
    # DFD-like: blends, few actors with many videos, another camera (warm cast, gamma, blur, noise).
    "dfd": SyntheticSpec(
        name="synth-dfd",
        identities=(30, 8, 40),
        videos_per_identity=10,
        frames_per_video=5,
        group_mix=(0.04, 0.36, 0.10, 0.05, 0.04, 0.28, 0.08, 0.05),
        fake_rate=(0.7, 0.6, 0.75, 0.7, 0.65, 0.55, 0.75, 0.7),
        artifact_visibility=(1.0, 1.0, 0.6, 0.8, 0.9, 0.9, 0.5, 0.7),
        group_label_noise=0.05,
        cross_group_swap_rate=0.5,
        manipulations=("blend",),
        manipulation_weights=(1.0,),
        keep_manipulation_labels=True,
        blend_softness=0.15,
        blend_colour_correction=0.5,
        lighting_variation=1.5,
        camera_blur=0.9,
        camera_white_balance=(1.08, 1.0, 0.88),
        camera_gamma=0.85,
        camera_noise=0.02,
        compression_quality=70,
    ),
    # DFDC-like: heavy compression with chroma subsampling, the unseen noise-mismatch manipulation, no
    # manipulation labels, more Black subjects, the FF group -> label shortcut reversed.
    "dfdc": SyntheticSpec(
        name="synth-dfdc",
        identities=(96, 24, 96),
        videos_per_identity=5,
        frames_per_video=4,
        group_mix=(0.08, 0.20, 0.14, 0.08, 0.08, 0.20, 0.14, 0.08),
        fake_rate=_mirrored(_FF_FAKE_RATE),
        artifact_visibility=(1.0, 1.0, 0.6, 0.8, 0.9, 0.9, 0.5, 0.7),
        group_label_noise=0.05,
        cross_group_swap_rate=0.6,
        manipulations=("blend", "warp-blur", "noise-mismatch"),
        manipulation_weights=(0.5, 0.15, 0.35),
        keep_manipulation_labels=False,
        blend_softness=0.2,
        blend_colour_correction=0.3,
        pose_variation=1.5,
        lighting_variation=1.5,
        camera_blur=0.7,
        camera_white_balance=(0.95, 1.0, 1.05),
        camera_noise=0.015,
        compression_quality=50,
        compression_chroma_subsampling=True,
    ),
}


def without_bias(spec: SyntheticSpec) -> SyntheticSpec:
    """The same domain with every bias knob off: the control on which a baseline must be fair in-domain.

    Uniform group mix; one fake rate and one artifact visibility for every group (the mix-weighted means of
    `spec`'s, so the domain keeps its overall difficulty); no label noise on the group annotation. The name
    gains "-unbiased", so the control draws its own faces.
    """
    mix = np.asarray(spec.group_mix, dtype=np.float64)
    fake_rate = round(float(mix @ np.asarray(spec.fake_rate)), 6)
    visibility = round(float(mix @ np.asarray(spec.artifact_visibility)), 6)
    return dataclasses.replace(
        spec,
        name=spec.name if spec.name.endswith("-unbiased") else f"{spec.name}-unbiased",
        group_mix=UNIFORM_MIX,
        fake_rate=(fake_rate,) * N_GROUPS,
        artifact_visibility=(visibility,) * N_GROUPS,
        group_label_noise=0.0,
    )


# ---------------------------------------------------------------------------------------------------------
# Public entry point.


def generate(
    spec: SyntheticSpec, *, image_size: int, seed: int, scale: float = 1.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Generate one domain: the manifest (one row per frame) and the frames, row-aligned.

    ``image_size`` (16-256) is the side of the square frames, drawn directly at that size; ``seed`` picks
    the random stream (with ``spec.name``); ``scale`` multiplies the identities per split (at least one
    per split). Returns ``(manifest, images)`` with images a C-contiguous uint8 array (N, S, S, 3), RGB.
    The same arguments always give the same manifest and the same bytes.
    """
    if not isinstance(spec, SyntheticSpec):
        raise ConfigError(f"spec: expected a SyntheticSpec, got {type(spec).__name__}.")
    if isinstance(image_size, bool) or int(image_size) != image_size or not (
        MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ConfigError(
            f"image_size = {image_size!r}: expected an integer from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}."
        )
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ConfigError(f"seed = {seed!r}: expected a non-negative integer.")
    if not (isinstance(scale, int | float) and math.isfinite(scale) and scale > 0):
        raise ConfigError(f"scale = {scale!r}: expected a positive number.")
    streams = _Streams(int(seed), spec.name)
    videos = _plan_videos(spec, streams, float(scale))
    frames = _frame_table(spec, videos)
    images = _draw_all(spec, streams, videos, frames, int(image_size))
    return _manifest(spec, videos, frames), images


# ---------------------------------------------------------------------------------------------------------
# Random streams.


class _Streams:
    """Independent generators addressed by a purpose and indices, never by the order of the calls."""

    IDENTITY, VIDEO, CAPTURE, PIXELS, SPLIT, ALLOCATION, MANIPULATION, SECOND_PIXELS = range(8)

    def __init__(self, seed: int, name: str) -> None:
        self._entropy = (seed, zlib.crc32(name.encode("utf-8")))

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))


# ---------------------------------------------------------------------------------------------------------
# The plan: identities, their groups and splits, and every video (real or fake, manipulation, source).


def _apportion(total: int, probs: np.ndarray, minimum: int) -> np.ndarray:
    """Split ``total`` seats over groups by largest remainders, ``minimum`` first to every positive group."""
    positive = probs > 0
    floor = minimum if total >= minimum * int(positive.sum()) else 0
    seats = np.where(positive, floor, 0)
    rest = total - int(seats.sum())
    quota = probs / probs.sum() * rest
    seats = seats + np.floor(quota).astype(np.int64)
    remainder = quota - np.floor(quota)
    for g in np.argsort(-remainder, kind="stable")[: total - int(seats.sum())]:
        seats[g] += 1
    return seats


def _plan_videos(spec: SyntheticSpec, streams: _Streams, scale: float) -> pd.DataFrame:
    """One row per video: identity, slot, capture, split, group, stored group, label, manipulation, source.

    Like FF++, a fake is made from a real video of its target: its ``capture`` (pose, lighting, frame
    jitter, sensor noise) is that of one of the identity's real videos, round robin, so real and fake
    differ by the manipulation only. An identity without real videos uses the fake's own capture.
    """
    counts = [max(1, round(n * scale)) for n in spec.identities]
    id_split = np.repeat(np.arange(3), counts)
    id_group = np.empty(sum(counts), dtype=np.int64)
    start = 0
    for s, n in enumerate(counts):
        seats = _apportion(n, np.asarray(spec.group_mix, dtype=np.float64), spec.min_identities_per_group)
        id_group[start : start + n] = streams.rng(_Streams.SPLIT, s).permutation(np.repeat(np.arange(8), seats))
        start += n

    n_videos = spec.videos_per_identity
    is_fake = np.zeros((len(id_group), n_videos), dtype=bool)
    for s in range(3):
        for g in range(N_GROUPS):
            members = np.flatnonzero((id_split == s) & (id_group == g))
            if len(members) == 0:
                continue
            n_fake = round(spec.fake_rate[g] * len(members) * n_videos)
            per_identity = np.full(len(members), n_fake // len(members))
            extra = streams.rng(_Streams.ALLOCATION, s, g).permutation(len(members))[: n_fake % len(members)]
            per_identity[extra] += 1
            for i, k in zip(members, per_identity, strict=True):
                slots = streams.rng(_Streams.ALLOCATION, s, g, int(i)).permutation(n_videos)[:k]
                is_fake[i, slots] = True

    weights = np.asarray(spec.manipulation_weights, dtype=np.float64)
    weights = weights / weights.sum()
    rows = []
    for i in range(len(id_group)):
        real_slots = np.flatnonzero(~is_fake[i])
        capture = np.arange(n_videos)
        if len(real_slots):
            fake_slots = np.flatnonzero(is_fake[i])
            capture[fake_slots] = real_slots[np.arange(len(fake_slots)) % len(real_slots)]
        same_split = np.flatnonzero(id_split == id_split[i])
        others = same_split[same_split != i]
        cross = others[id_group[others] != id_group[i]]
        same = others[id_group[others] == id_group[i]]
        for v in range(n_videos):
            rng = streams.rng(_Streams.VIDEO, i, v)
            manipulation = int(rng.choice(len(weights), p=weights)) + 1
            want_cross = rng.random() < spec.cross_group_swap_rate
            pool = (cross if want_cross else same) if len(cross) and len(same) else others
            source = int(rng.choice(pool)) if len(pool) else i
            noisy = rng.random() < spec.group_label_noise
            stored = (id_group[i] + 1 + int(rng.integers(N_GROUPS - 1))) % N_GROUPS if noisy else id_group[i]
            label = int(is_fake[i, v])
            rows.append(
                (i, v, int(capture[v]), int(id_split[i]), int(id_group[i]), int(stored), label,
                 manipulation if label else 0, source if label else -1)
            )  # fmt: skip
    videos = pd.DataFrame(
        rows,
        columns=["identity", "slot", "capture", "split", "group", "stored_group", "label", "manipulation",
                 "source"],
    )  # fmt: skip
    names = [
        f"id{i:04d}_v{v}" if m == 0 else f"id{i:04d}_v{v}__{spec.manipulations[m - 1]}__id{src:04d}"
        for i, v, m, src in zip(videos.identity, videos.slot, videos.manipulation, videos.source, strict=True)
    ]
    videos.insert(0, "video", names)
    return videos


def _frame_table(spec: SyntheticSpec, videos: pd.DataFrame) -> pd.DataFrame:
    """One row per frame: the video's row index and the frame number."""
    n_frames = spec.frames_per_video
    return pd.DataFrame(
        {
            "video_row": np.repeat(np.arange(len(videos)), n_frames),
            "frame": np.tile(np.arange(n_frames), len(videos)),
        }
    )


def _manifest(spec: SyntheticSpec, videos: pd.DataFrame, frames: pd.DataFrame) -> pd.DataFrame:
    """The manifest: one row per frame, string columns as Python str (object dtype), integers as int64."""
    v = videos.iloc[frames.video_row.to_numpy()].reset_index(drop=True)
    frame = frames.frame.to_numpy()
    video = v.video.tolist()
    manipulation = v.manipulation.to_numpy(np.int64)
    if not spec.keep_manipulation_labels:
        manipulation = np.minimum(manipulation, 1)
    stored, true = v.stored_group.to_numpy(np.int64), v.group.to_numpy(np.int64)
    strings = {
        "sample": [f"{name}__f{f:03d}" for name, f in zip(video, frame, strict=True)],
        "path": [f"{name}/{f:03d}.png" for name, f in zip(video, frame, strict=True)],
        "video": video,
        "identity": [f"id{i:04d}" for i in v.identity],
        "split": [SPLITS[s] for s in v.split],
    }
    integers = {
        "label": v.label.to_numpy(np.int64),
        "manipulation": manipulation,
        "gender": stored // 4,
        "race": stored % 4,
        "intersection": stored,
        "true_gender": true // 4,
        "true_race": true % 4,
        "true_intersection": true,
    }
    columns = {name: pd.Series(values, dtype=object) for name, values in strings.items()}
    columns |= {name: pd.Series(values, dtype=np.int64) for name, values in integers.items()}
    return pd.DataFrame(columns)[list(MANIFEST_COLUMNS)]


# ---------------------------------------------------------------------------------------------------------
# Appearance, pose and lighting parameters.

# Skin tone t in [0, 1] (light -> dark) per race: overlapping normal ranges (Asian, White, Black, Others).
_TONE_MEAN = np.array([0.33, 0.18, 0.76, 0.50])
_TONE_SD = np.array([0.09, 0.09, 0.11, 0.14])
_TONE_KNOTS = np.array([0.0, 0.35, 0.7, 1.0])
_TONE_RGB = np.array([[0.97, 0.83, 0.74], [0.84, 0.64, 0.49], [0.55, 0.36, 0.24], [0.27, 0.17, 0.11]])
_HAIR_RGB = np.array(
    [[0.06, 0.05, 0.05], [0.20, 0.12, 0.07], [0.42, 0.27, 0.14], [0.78, 0.64, 0.38], [0.55, 0.20, 0.08]]
)  # black, dark brown, brown, blond, red
_HAIR_P = np.array(
    [[0.8, 0.15, 0.05, 0.0, 0.0], [0.15, 0.3, 0.25, 0.22, 0.08], [0.85, 0.15, 0.0, 0.0, 0.0],
     [0.55, 0.35, 0.1, 0.0, 0.0]]
)  # fmt: skip
_IRIS_RGB = np.array([[0.18, 0.10, 0.06], [0.35, 0.22, 0.10], [0.25, 0.40, 0.60], [0.30, 0.45, 0.30]])
_IRIS_P = np.array([[0.8, 0.2, 0, 0], [0.3, 0.3, 0.25, 0.15], [0.85, 0.15, 0, 0], [0.6, 0.3, 0.05, 0.05]])

_IDENTITY_KEYS = (
    "skin", "hair", "lip", "iris", "bg1", "bg2", "clothes", "tone", "jaw", "head_a", "head_b", "hair_len",
    "hair_volume", "hairline", "brow", "eye_dx", "eye_y", "eye_w", "eye_h", "nose_w", "nose_len", "mouth_y",
    "mouth_w", "mouth_h", "bg_angle", "bg_freq", "bg_phase", "bg_amp",
)  # fmt: skip
# What a face swap takes from the source identity (the rest of the head stays the target's).
_FACE_KEYS = ("skin", "lip", "iris", "tone", "brow", "eye_dx", "eye_y", "eye_w", "eye_h", "nose_w",
              "nose_len", "mouth_y", "mouth_w", "mouth_h")  # fmt: skip


def _skin_rgb(tone: float) -> np.ndarray:
    return np.array([np.interp(tone, _TONE_KNOTS, _TONE_RGB[:, c]) for c in range(3)])


def _draw_identity(rng: np.random.Generator, group: int) -> dict[str, np.ndarray | float]:
    """Appearance of one identity of `group`: group-dependent cues plus identity-specific features."""
    female, race = group >= 4, group % 4
    tone = float(np.clip(rng.normal(_TONE_MEAN[race], _TONE_SD[race]), 0.0, 1.0))
    skin = np.clip(_skin_rgb(tone) * rng.normal(1.0, 0.03, 3) + rng.normal(0, 0.015), 0, 1)
    hair = _HAIR_RGB[rng.choice(5, p=_HAIR_P[race])] * rng.normal(1.0, 0.1, 3)
    long_hair = rng.random() < (0.85 if female else 0.12)
    return {
        "skin": skin,
        "hair": np.clip(hair, 0, 1),
        "lip": np.clip(skin * np.array([0.86, 0.58, 0.58]) * rng.normal(1.0, 0.05, 3), 0, 1),
        "iris": _IRIS_RGB[rng.choice(4, p=_IRIS_P[race])],
        "bg1": rng.uniform(0.1, 0.9, 3),
        "bg2": rng.uniform(0.1, 0.9, 3),
        "clothes": rng.uniform(0.05, 0.9, 3),
        "tone": tone,
        "jaw": rng.normal(0.74 if female else 0.93, 0.05),
        "head_a": rng.normal(0.60 if female else 0.65, 0.025),
        "head_b": rng.normal(0.80, 0.03),
        "hair_len": rng.uniform(0.6, 1.4) if long_hair else rng.uniform(-0.3, 0.25),
        "hair_volume": rng.uniform(0.0, 1.0),
        "hairline": rng.normal(-0.45, 0.05),
        "brow": rng.normal(0.030 if female else 0.045, 0.006),
        "eye_dx": rng.normal(0.24, 0.02),
        "eye_y": rng.normal(-0.08, 0.02),
        "eye_w": rng.normal(0.10, 0.01),
        "eye_h": rng.normal(0.052 if female else 0.046, 0.006),
        "nose_w": rng.normal(0.065, 0.01),
        "nose_len": rng.normal(0.16, 0.02),
        "mouth_y": rng.normal(0.40, 0.025),
        "mouth_w": rng.normal(0.17, 0.02),
        "mouth_h": rng.normal(0.05 if female else 0.042, 0.008),
        "bg_angle": rng.uniform(0, 2 * np.pi),
        "bg_freq": rng.uniform(2.0, 9.0),
        "bg_phase": rng.uniform(0, 2 * np.pi),
        "bg_amp": rng.uniform(0.0, 0.08),
    }


def _draw_lighting(rng: np.random.Generator, variation: float) -> tuple[float, float, float]:
    """Lighting of one video: the light gradient across the face (x, y components) and the ambient gain."""
    angle = rng.uniform(0, 2 * np.pi)
    amplitude = rng.uniform(0.0, 0.35) * variation
    return np.cos(angle) * amplitude, np.sin(angle) * amplitude, float(np.exp(rng.normal(0.0, 0.1 * variation)))


def _draw_capture(rng: np.random.Generator, spec: SyntheticSpec, n_frames: int) -> dict[str, np.ndarray]:
    """Pose and lighting of one captured video and the jitter of its frames: arrays (F,)."""
    pv = spec.pose_variation
    lx, ly, ambient = _draw_lighting(rng, spec.lighting_variation)
    shape = (n_frames,)
    return {
        "cx": rng.normal(0.0, 0.04 * pv) + rng.normal(0, 0.015 * pv, shape),
        "cy": rng.normal(-0.02, 0.04 * pv) + rng.normal(0, 0.015 * pv, shape),
        "scale": rng.normal(0.78, 0.04 * pv) * np.exp(rng.normal(0, 0.01 * pv, shape)),
        "roll": rng.normal(0.0, 0.08 * pv) + rng.normal(0, 0.02 * pv, shape),
        "yaw": rng.normal(0.0, 0.25 * pv) + rng.normal(0, 0.04 * pv, shape),
        "lx": np.full(shape, lx),
        "ly": np.full(shape, ly),
        "ambient": np.full(shape, ambient),
        "blink": np.where(rng.random(shape) < 0.1, rng.uniform(0.5, 1.0, shape), 0.0),
        "mouth_open": rng.uniform(0.0, 0.6, shape),
    }


def _draw_manipulation(rng: np.random.Generator, spec: SyntheticSpec, n_frames: int) -> dict[str, np.ndarray]:
    """Details of one fake video's manipulation (used by the kinds that need them): arrays (F, ...)."""
    src_lx, src_ly, src_ambient = _draw_lighting(rng, spec.lighting_variation)
    direction = rng.normal(0, 1, 3)
    direction /= np.linalg.norm(direction) + 1e-12
    per_video = {
        "src_lx": src_lx, "src_ly": src_ly, "src_ambient": src_ambient,  # lighting of the source video
        "strength": rng.uniform(0.7, 1.3),  # this video's factor on the artifact strength
        "phase_i": float(rng.integers(2)), "phase_j": float(rng.integers(2)),  # checkerboard phase
        "contrast": rng.choice([-1.0, 1.0]),  # colour: contrast up or down
    }  # fmt: skip
    out = {k: np.full((n_frames,), v, dtype=np.float64) for k, v in per_video.items()}
    out["colour_dir"] = np.tile(direction, (n_frames, 1))
    return out


def _frame_parameters(
    spec: SyntheticSpec, streams: _Streams, videos: pd.DataFrame
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-frame parameter arrays (N, ...) of the target faces and of each fake's source appearance."""
    identity_groups = videos.drop_duplicates("identity").set_index("identity").group
    identities = {
        int(i): _draw_identity(streams.rng(_Streams.IDENTITY, int(i)), int(g)) for i, g in identity_groups.items()
    }
    n_frames = spec.frames_per_video
    per_video = [
        _draw_capture(streams.rng(_Streams.CAPTURE, int(i), int(c)), spec, n_frames)
        | _draw_manipulation(streams.rng(_Streams.MANIPULATION, int(i), int(v)), spec, n_frames)
        for i, v, c in zip(videos.identity, videos.slot, videos.capture, strict=True)
    ]
    target_params = {k: np.concatenate([p[k] for p in per_video]).astype(np.float32) for k in per_video[0]}
    order = np.array(sorted(identities))
    target = videos.identity.to_numpy()
    source = np.where(videos.source.to_numpy() >= 0, videos.source.to_numpy(), target)
    target_rows = np.repeat(np.searchsorted(order, target), n_frames)
    source_rows = np.repeat(np.searchsorted(order, source), n_frames)
    source_params: dict[str, np.ndarray] = {}
    for key in _IDENTITY_KEYS:
        table = np.stack([np.asarray(identities[i][key], dtype=np.float32) for i in order])
        target_params[key] = table[target_rows]
        if key in _FACE_KEYS:
            source_params[key] = table[source_rows]
    return target_params, source_params


# ---------------------------------------------------------------------------------------------------------
# Rendering. Pixel arrays are planar, (3, N, H, W) float32, so every inner loop runs along an image row.


def _col(a: np.ndarray) -> np.ndarray:
    """Per-frame values for broadcasting over pixels: (N,) -> (N, 1, 1); (N, 3) colours -> (3, N, 1, 1)."""
    return a[:, None, None] if a.ndim == 1 else np.ascontiguousarray(a.T)[:, :, None, None]


def _ramp(d: np.ndarray, width: np.ndarray | float) -> np.ndarray:
    """Coverage 1 inside (d < 0), 0 outside, linear over `width` around the edge (overwrites `d`)."""
    d *= -1.0 / np.asarray(width, dtype=np.float32)
    d += 0.5
    return np.clip(d, 0.0, 1.0, out=d)


def _ellipse_distance(x, y, cx, cy, a, b, *, thin: bool = False) -> np.ndarray:
    """Signed distance to an axis-aligned ellipse (negative inside), accurate near its edge.

    f = (x/a)^2 + (y/b)^2 - 1 divided by |grad f| (first order, so thin ellipses stay thin). Far from a
    `thin` ellipse the first-order value is too small, so it is bounded below by the distance to the
    bounding box there.
    """
    inv_a, inv_b = 1.0 / np.asarray(a, dtype=np.float32), 1.0 / np.asarray(b, dtype=np.float32)
    dx, dy = x - cx, y - cy
    qx, qy = dx * inv_a, dy * inv_b
    f = qx * qx
    f += qy * qy
    f -= 1.0
    qx *= inv_a  # half the gradient of f
    qy *= inv_b
    qx *= qx
    qy *= qy
    qx += qy
    gradient = np.sqrt(qx, out=qx)
    gradient *= 2.0
    gradient += 1e-6
    f /= gradient
    if thin:
        np.abs(dx, out=dx)
        dx -= a
        np.abs(dy, out=dy)
        dy -= b
        np.maximum(f, np.maximum(dx, dy, out=dx), out=f)
    return f


def _paint(img: np.ndarray, cover: np.ndarray, colour: np.ndarray) -> None:
    """In place: img <- img + cover * (colour - img); img (3, N, H, W), cover (N, H, W)."""
    delta = colour - img
    delta *= cover
    img += delta


_WHITE_OF_EYE = np.array([0.93, 0.92, 0.88], dtype=np.float32)[:, None, None, None]
_INSIDE_OF_MOUTH = np.array([0.15, 0.05, 0.05], dtype=np.float32)[:, None, None, None]


def _render(p: dict[str, np.ndarray], size: int, softness: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw faces from per-frame parameters: images (3, N, S, S) in [0, 1] and the inner-face mask (N, S, S)."""
    grid = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    u, v = grid[None, None, :], grid[None, :, None]
    scale = _col(p["scale"])
    du, dv = u - _col(p["cx"]), v - _col(p["cy"])
    cos, sin = _col(np.cos(p["roll"])), _col(np.sin(p["roll"]))
    x = (du * cos + dv * sin) / scale  # (N, S, S) head-local coordinates; the head is about 1.6 units tall
    y = (dv * cos - du * sin) / scale
    px = (2.0 / size) / scale  # one pixel in local units
    a, b = _col(p["head_a"]), _col(p["head_b"])
    shift = _col(p["yaw"]) * 0.12  # features move sideways as the head turns

    # background: identity-specific gradient plus a soft stripe pattern
    angle, freq, amp = _col(p["bg_angle"]), _col(p["bg_freq"]), _col(p["bg_amp"])
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    # amp * sin(freq * (sin_a u - cos_a v) + phase), expanded so that only (N, 1, S) and (N, S, 1) need sines
    wave_u = freq * sin_a * u + _col(p["bg_phase"])
    wave_v = freq * cos_a * v
    stripes = (amp * np.sin(wave_u)) * np.cos(wave_v) - (amp * np.cos(wave_u)) * np.sin(wave_v)
    t = 0.5 + 0.35 * (cos_a * u + sin_a * v) + stripes
    bg1 = _col(p["bg1"])
    img = bg1 + t * (_col(p["bg2"]) - bg1)

    # back hair (long hair reaches the shoulders), body, neck
    hair_w = a + 0.06 + 0.1 * _col(p["hair_volume"])
    back = _ramp(_ellipse_distance(x, y, 0.0, -0.05, hair_w, b + 0.08), px)
    strand = _ramp(np.abs(x) - hair_w, px) * _ramp(y - _col(p["hair_len"]), px) * _ramp(-y, px)
    _paint(img, np.maximum(back, strand), _col(p["hair"]))
    _paint(img, _ramp(_ellipse_distance(x, y, 0.0, 1.55, 1.25, 0.65), px), _col(p["clothes"]))
    _paint(img, _ramp(np.abs(x) - 0.26, px) * _ramp(0.3 - y, px), _col(p["skin"]) * 0.8)

    # head: ellipse whose lower half narrows towards the chin by the jaw factor, with shading
    narrowing = 1.0 - (1.0 - _col(p["jaw"])) * np.clip(y / b, 0.0, 1.0)
    head = _ramp(_ellipse_distance(x / narrowing, y, 0.0, 0.0, a, b), px)
    shade = 1.0 + 0.6 * (_col(p["lx"]) * x + _col(p["ly"]) * y) - 0.12 * (x * x + y * y)
    _paint(img, head, _col(p["skin"]) * shade)

    # front hair: a cap above a curved hairline
    hairline = _col(p["hairline"]) + 0.3 * (x / a) ** 2
    cap = _ramp(_ellipse_distance(x, y, 0.0, -0.03, a + 0.04, b + 0.06), px) * _ramp(y - hairline, px)
    _paint(img, cap, _col(p["hair"]))

    # brows, eyes, nose, mouth and the inner-face mask, computed only inside the window that holds them
    rows, cols = _face_window(p, size, softness)
    x, y = x[:, rows, cols], y[:, rows, cols]
    face = img[:, :, rows, cols]  # a view: painting it paints img
    ey, eye_w, eye_h = _col(p["eye_y"]), _col(p["eye_w"]), _col(p["eye_h"])
    open_h = eye_h * (1.0 - 0.9 * _col(p["blink"]))
    for side in (-1.0, 1.0):
        ex = side * _col(p["eye_dx"]) + shift
        _paint(face, _ramp(_ellipse_distance(x, y, ex, ey - 0.12, eye_w * 1.25, _col(p["brow"]), thin=True), px),
               _col(p["hair"]))  # fmt: skip
        eye = _ramp(_ellipse_distance(x, y, ex, ey, eye_w, open_h, thin=True), px)
        _paint(face, eye, _WHITE_OF_EYE)
        iris = _ramp(_ellipse_distance(x, y, ex + shift * 0.3, ey, eye_h, eye_h), px)
        _paint(face, eye * iris, _col(p["iris"]))
    nose = _ramp(_ellipse_distance(x, y, shift * 1.3, 0.12, _col(p["nose_w"]), _col(p["nose_len"])), px)
    nostrils = _ramp(_ellipse_distance(x, y, shift * 1.3, 0.26, _col(p["nose_w"]) * 1.1, 0.025, thin=True), px)
    face *= 1.0 - 0.16 * nose - 0.3 * nostrils
    my, mouth_w, mouth_open = _col(p["mouth_y"]), _col(p["mouth_w"]), _col(p["mouth_open"])
    lips_h = _col(p["mouth_h"]) * (1.0 + 1.5 * mouth_open)
    _paint(face, _ramp(_ellipse_distance(x, y, shift, my, mouth_w, lips_h, thin=True), px), _col(p["lip"]))
    inner_h = _col(p["mouth_h"]) * mouth_open + 1e-3
    _paint(face, _ramp(_ellipse_distance(x, y, shift, my, mouth_w * 0.8, inner_h, thin=True), px),
           _INSIDE_OF_MOUTH)  # fmt: skip

    # inner face region: where every manipulation leaves its artifact, with a feathered edge
    ramp = _ramp(_ellipse_distance(x, y, shift, *_INNER_FACE) + 0.5 * softness, np.maximum(softness, px))
    inner = np.zeros(img.shape[1:], dtype=np.float32)
    inner[:, rows, cols] = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep

    # global illumination of the scene
    img *= _col(p["ambient"]) * (1.0 + 0.4 * (_col(p["lx"]) * u + _col(p["ly"]) * v))
    return np.clip(img, 0.0, 1.0, out=img), inner


# The inner face region in head-local coordinates: centre y, half-width, half-height (centre x: the yaw shift).
_INNER_FACE = (0.12, 0.44, 0.52)


def _face_window(p: dict[str, np.ndarray], size: int, softness: float) -> tuple[slice, slice]:
    """Pixel rows and columns that hold every face feature and the inner-face mask of every frame.

    Coverage outside is exactly zero, so drawing only inside the window changes no pixel.
    """
    cy_inner, a_inner, b_inner = _INNER_FACE
    shift = p["yaw"].astype(np.float64) * 0.12
    margin = 2.0 * (2.0 / size) / p["scale"]  # two pixels in local units
    half_width = np.maximum.reduce(
        [np.full(shift.shape, a_inner + softness), p["eye_dx"] + 1.25 * p["eye_w"], p["mouth_w"], 1.1 * p["nose_w"]]
    ) + 0.3 * np.abs(shift) + margin
    top = np.minimum(cy_inner - b_inner - softness, p["eye_y"] - 0.12 - p["brow"]) - margin
    mouth_bottom = p["mouth_y"] + p["mouth_h"] * (1.0 + 1.5 * p["mouth_open"])
    bottom = np.maximum(np.maximum(cy_inner + b_inner + softness, mouth_bottom), 0.12 + p["nose_len"]) + margin
    corners_x = np.stack([shift - half_width, shift + half_width] * 2)  # (4, N)
    corners_y = np.stack([top, top, bottom, bottom])
    cos, sin, scale = np.cos(p["roll"]), np.sin(p["roll"]), p["scale"]
    u = p["cx"] + scale * (corners_x * cos - corners_y * sin)
    v = p["cy"] + scale * (corners_x * sin + corners_y * cos)

    def span(coordinate: np.ndarray) -> slice:
        index = (coordinate + 1.0) / 2.0 * size - 0.5
        return slice(max(0, math.floor(index.min()) - 1), min(size, math.ceil(index.max()) + 2))

    return span(v), span(u)


# ---------------------------------------------------------------------------------------------------------
# Camera, manipulations, compression (planar arrays; the last two axes are H and W).


def _blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur over the last two axes with edge padding; sigma in pixels."""
    if sigma < 0.1:
        return img
    radius = max(1, math.ceil(3.0 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel = (kernel / kernel.sum()).astype(np.float32)
    h, w = img.shape[-2:]
    lead = [(0, 0)] * (img.ndim - 2)
    padded = np.pad(img, [*lead, (radius, radius), (0, 0)], mode="edge")
    rows = np.zeros_like(img)
    for k, weight in enumerate(kernel):
        rows += weight * padded[..., k : k + h, :]
    padded = np.pad(rows, [*lead, (0, 0), (radius, radius)], mode="edge")
    out = np.zeros_like(img)
    for k, weight in enumerate(kernel):
        out += weight * padded[..., k : k + w]
    return out


def _pool2(img: np.ndarray) -> np.ndarray:
    """2x2 average over the last two axes (odd sizes padded by the edge)."""
    h, w = img.shape[-2:]
    lead = [(0, 0)] * (img.ndim - 2)
    img = np.pad(img, [*lead, (0, h % 2), (0, w % 2)], mode="edge")
    return img.reshape(*img.shape[:-2], (h + 1) // 2, 2, (w + 1) // 2, 2).mean(axis=(-3, -1))


def _unpool2(img: np.ndarray, h: int, w: int) -> np.ndarray:
    """Nearest-neighbour 2x upsampling over the last two axes, cropped to (h, w)."""
    return np.repeat(np.repeat(img, 2, axis=-2), 2, axis=-1)[..., :h, :w]


def _camera(img: np.ndarray, spec: SyntheticSpec, size: int) -> np.ndarray:
    """The noise-free part of the domain's camera: blur, white balance, gamma."""
    img = _blur(img, spec.camera_blur * size / 64.0)
    img = np.clip(img * np.asarray(spec.camera_white_balance, dtype=np.float32)[:, None, None, None], 0.0, 1.0)
    if spec.camera_gamma != 1.0:
        img = img ** np.float32(spec.camera_gamma)
    return img


def _correlated_noise(white: np.ndarray, size: int) -> np.ndarray:
    """Spatially correlated unit-variance noise from white noise (a sensor of another resolution)."""
    noise = _blur(white, 1.6 * size / 64.0 + 0.5)
    return noise / (noise.std(axis=(0, 2, 3), keepdims=True) + 1e-8)


def _checkerboard(size: int, phase_i: np.ndarray, phase_j: np.ndarray) -> np.ndarray:
    """Period-2 pattern of zero-insertion upsampling (rows, columns, diagonal), zero mean: (N, S, S)."""
    i = np.arange(size, dtype=np.float32)
    ri = np.cos(np.pi * (i[None, :, None] + _col(phase_i)))  # +-1 by row parity
    rj = np.cos(np.pi * (i[None, None, :] + _col(phase_j)))
    return (ri + rj + ri * rj) / 3.0


# Artifact amplitudes at strength 1 (absolute intensities; blur sigmas in px@64). Mixing weights (how much
# of a blurred, resampled or pasted face replaces the original) are min(1, _MIX_GAIN * strength).
_MIX_GAIN = 2.0
_BLEND_SMOOTH = 1.2
_UPSAMPLE_CHECKER = 0.044
_WARP_BLUR = 1.2
_COLOUR_SHIFT = 0.18
_COLOUR_CONTRAST = 0.6
_NOISE_MISMATCH = 0.08


def _inner_mean(img: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Mask-weighted mean colour of each frame: (3, N, 1, 1)."""
    return (img * m).sum(axis=(2, 3), keepdims=True) / (m.sum(axis=(1, 2), keepdims=True) + 1e-6)


def _mix(strength: np.ndarray) -> np.ndarray:
    """Mixing weight of a replaced face region at a strength (N,): (N, 1, 1) in [0, 1]."""
    return _col(np.clip(_MIX_GAIN * strength, 0.0, 1.0))


def _manipulate(
    kind: str,
    captured: np.ndarray,
    noise: np.ndarray,
    m: np.ndarray,
    strength: np.ndarray,
    p: dict[str, np.ndarray],
    extra: dict[str, np.ndarray],
    size: int,
    spec: SyntheticSpec,
) -> np.ndarray:
    """Apply one manipulation to captured frames (3, N, S, S) inside the inner-face mask m (N, S, S).

    `strength` (N,) already includes the group's artifact visibility and the video's own factor.
    """
    s = _col(strength)  # (N, 1, 1)
    mix = _mix(strength)
    if kind == "blend":
        source = extra["source"]
        mismatch = _inner_mean(source, m) - _inner_mean(captured, m)
        source = source - (1.0 - (1.0 - spec.blend_colour_correction) * mix) * mismatch
        source = source + mix * (_blur(source, _BLEND_SMOOTH * size / 64.0) - source)
        return captured + m * (source - captured)
    if kind == "upsample":
        up = _blur(_unpool2(_pool2(captured), size, size), 0.5)
        checker = _checkerboard(size, p["phase_i"], p["phase_j"])
        return captured + m * (mix * (up - captured) + (_UPSAMPLE_CHECKER * s) * checker)
    if kind == "warp-blur":
        return captured + (m * mix) * (_blur(captured, _WARP_BLUR * size / 64.0) - captured)
    if kind == "colour":
        shift = _COLOUR_SHIFT * s * _col(p["colour_dir"])
        contrast = (_COLOUR_CONTRAST * s * _col(p["contrast"])) * (captured - _inner_mean(captured, m))
        return captured + m * (shift + contrast)
    if kind == "noise-mismatch":
        other = _correlated_noise(extra["white"], size) * (_NOISE_MISMATCH * s)
        return captured + m * (other - mix * noise)
    raise AssertionError(kind)


def _quant_table(base: np.ndarray, quality: int) -> np.ndarray:
    """IJG scaling of a base quantisation table to a quality in 1..100."""
    factor = 5000.0 / quality if quality < 50 else 200.0 - 2.0 * quality
    return np.clip(np.floor((base * factor + 50.0) / 100.0), 1.0, 255.0)


_LUMA_TABLE = np.array(
    [[16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
     [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
     [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=np.float64,
)  # fmt: skip
_CHROMA_TABLE = np.full((8, 8), 99.0)
_CHROMA_TABLE[:4, :4] = [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]]
_DCT = np.array(
    [[math.sqrt((1 if k == 0 else 2) / 8) * math.cos((2 * n + 1) * k * math.pi / 16) for n in range(8)]
     for k in range(8)]
)  # fmt: skip  # orthonormal DCT-II: row k is basis function k


def _dct_quantise(plane: np.ndarray, table: np.ndarray) -> np.ndarray:
    """8x8 block DCT, quantisation by `table` [vertical, horizontal frequency], inverse DCT.

    plane (N, H, W) float32, padded by the edge to whole blocks and cropped back.
    """
    n, h, w = plane.shape
    hp, wp = -(-h // 8) * 8, -(-w // 8) * 8
    padded = np.pad(plane, [(0, 0), (0, hp - h), (0, wp - w)], mode="edge")
    blocks = padded.reshape(n, hp // 8, 8, wp // 8, 8).transpose(0, 1, 3, 2, 4)  # (N, Hb, Wb, 8, 8)
    dct, table = _DCT.astype(np.float32), table.astype(np.float32)
    coef = np.matmul(np.matmul(dct, blocks), dct.T)
    coef = np.round(coef / table) * table
    pixels = np.matmul(np.matmul(dct.T, coef), dct)
    return pixels.transpose(0, 1, 3, 2, 4).reshape(n, hp, wp)[:, :h, :w]


def _compress(img: np.ndarray, quality: int, chroma_subsampling: bool) -> np.ndarray:
    """JPEG-like round trip of planar (3, N, S, S) images in [0, 1] (JFIF YCbCr, IJG quantisation tables)."""
    r, g, b = (c * np.float32(255.0) for c in img)
    y = 0.299 * r + 0.587 * g + 0.114 * b - 128.0
    cb = -0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 0.5 * r - 0.418688 * g - 0.081312 * b
    y = _dct_quantise(y, _quant_table(_LUMA_TABLE, quality)) + 128.0
    chroma_table = _quant_table(_CHROMA_TABLE, quality)
    h, w = y.shape[-2:]
    if chroma_subsampling:
        cb, cr = (_unpool2(_dct_quantise(_pool2(c), chroma_table), h, w) for c in (cb, cr))
    else:
        cb, cr = (_dct_quantise(c, chroma_table) for c in (cb, cr))
    return np.stack([y + 1.402 * cr, y - 0.344136 * cb - 0.714136 * cr, y + 1.772 * cb]) / 255.0


# ---------------------------------------------------------------------------------------------------------
# Putting it together, chunk by chunk (whole videos per chunk; pixel noise is drawn per video).


def _chunks(n_videos: int, frames_per_video: int, size: int) -> list[range]:
    per_chunk = max(1, (1 << 18) // (size * size * frames_per_video))
    return [range(start, min(start + per_chunk, n_videos)) for start in range(0, n_videos, per_chunk)]


def _needs_second_noise(kind: str) -> bool:
    return kind in ("blend", "noise-mismatch")


def _draw_all(
    spec: SyntheticSpec, streams: _Streams, videos: pd.DataFrame, frames: pd.DataFrame, size: int
) -> np.ndarray:
    target_params, source_params = _frame_parameters(spec, streams, videos)
    n_frames = spec.frames_per_video
    label = np.repeat(videos.label.to_numpy(), n_frames)
    manipulation = np.repeat(videos.manipulation.to_numpy(), n_frames)
    group = np.repeat(videos.group.to_numpy(), n_frames)
    visibility = np.asarray(spec.artifact_visibility, dtype=np.float32)[group]
    strength = (spec.artifact_strength * visibility * target_params["strength"]).astype(np.float32)
    second = np.array([False] + [_needs_second_noise(k) for k in spec.manipulations])[videos.manipulation.to_numpy()]
    images = np.empty((len(frames), size, size, 3), dtype=np.uint8)
    for chunk in _chunks(len(videos), n_frames, size):
        rows = np.arange(chunk.start * n_frames, chunk.stop * n_frames)
        p = {k: a[rows] for k, a in target_params.items()}
        clean, inner = _render(p, size, spec.blend_softness)
        out = _camera(clean, spec, size)
        noise, white = _pixel_noise(streams, videos, chunk, second, n_frames, size)
        noise *= np.float32(spec.camera_noise)
        out += noise
        for k, kind in enumerate(spec.manipulations, start=1):
            sel = np.flatnonzero((label[rows] == 1) & (manipulation[rows] == k))
            if len(sel) == 0:
                continue
            sub = {key: a[sel] for key, a in p.items()}
            extra = {"white": white[:, sel]} if _needs_second_noise(kind) else {}
            if kind == "blend":
                extra["source"] = _render_source(
                    sub, source_params, rows[sel], strength[rows][sel], spec, size, extra["white"]
                )
            out[:, sel] = _manipulate(
                kind, out[:, sel], noise[:, sel], inner[sel], strength[rows][sel], sub, extra, size, spec
            )
        out = _compress(np.clip(out, 0.0, 1.0), spec.compression_quality, spec.compression_chroma_subsampling)
        images[rows] = np.clip(np.floor(out * 255.0 + 0.5), 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)
    return images


def _pixel_noise(
    streams: _Streams, videos: pd.DataFrame, chunk: range, second: np.ndarray, n_frames: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit white noise per frame of the chunk's videos (3, N, S, S): the camera's (shared by a fake and the
    real video it was made from), and a second field (the source camera's, or the mismatched sensor's) for
    the videos whose manipulation needs one."""
    first = np.empty((3, len(chunk) * n_frames, size, size), dtype=np.float32)
    other = np.zeros_like(first)
    for k, row in enumerate(chunk):
        identity = int(videos.identity[row])
        frames = slice(k * n_frames, (k + 1) * n_frames)
        rng = streams.rng(_Streams.PIXELS, identity, int(videos.capture[row]))
        first[:, frames] = rng.standard_normal((3, n_frames, size, size), dtype=np.float32)
        if second[row]:
            rng = streams.rng(_Streams.SECOND_PIXELS, identity, int(videos.slot[row]))
            other[:, frames] = rng.standard_normal((3, n_frames, size, size), dtype=np.float32)
    return first, other


def _render_source(
    target: dict[str, np.ndarray],
    source_params: dict[str, np.ndarray],
    rows: np.ndarray,
    strength: np.ndarray,
    spec: SyntheticSpec,
    size: int,
    white: np.ndarray,
) -> np.ndarray:
    """The source identity's face in the target's pose, lit (by `strength`) like the source video."""
    p = dict(target)
    for key, table in source_params.items():
        p[key] = table[rows]
    towards_source = np.clip(_MIX_GAIN * strength, 0.0, 1.0)
    for key in ("lx", "ly", "ambient"):
        p[key] = target[key] + towards_source * (target[f"src_{key}"] - target[key])
    face, _ = _render(p, size, spec.blend_softness)
    return _camera(face, spec, size) + white * np.float32(spec.camera_noise)


# ---------------------------------------------------------------------------------------------------------
# The domains in the published formats (docs/DATA.md, formats 1-3), with real PNG files, so the readers of
# real data are tested end to end without real data. Reading them back gives the generator's manifest.

PUBLISHED_FORMATS = ("purdue-legacy", "purdue-v2", "deepfakebench")
# The identity in a video name (id0042_v3, id0042_v3__blend__id0007), for a description's identity_pattern.
IDENTITY_PATTERN = r"^(?P<identity>id\d+)_v"


def write_frames(manifest: pd.DataFrame, images: np.ndarray, folder: str | Path) -> None:
    """Each frame as a PNG file at ``folder / path`` (the manifest's paths are video/frame.png)."""
    folder = Path(folder)
    for path, frame in zip(manifest["path"], images, strict=True):
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame, mode="RGB").save(target, format="PNG", compress_level=1)


def write_published(
    manifest: pd.DataFrame,
    images: np.ndarray,
    folder: str | Path,
    *,
    format: str,
    name: str = "synth",
    manipulations: Sequence[str] = (),
    six_groups: bool = False,
    windows_separators: bool = False,
    path_prefix: str = "",
    noisy_seed: int = 0,
) -> dict[str, Any]:
    """Write a generated domain as PNG frames plus the annotation files of one published format.

    ``format``: ``purdue-legacy`` (faketrain/realtrain/fakeval/realval/test.csv; ``six_groups`` writes the
    Celeb-DF/DFD coding without ``isasian``, which merges Asian into Others), ``purdue-v2`` (train/val/test.csv
    with both ``Intersection`` and a noisier ``intersec_label``: each video's group is redrawn with
    probability 0.1, from ``noisy_seed``) or ``deepfakebench`` (``<name>.json`` under a ``c23`` compression
    level, label names ``<name>_real`` and ``<name>_<manipulation>``, and ``demographics.csv`` keyed by video,
    in words). ``path_prefix`` (an absolute folder, like the authors' machine) is written before every path,
    and ``windows_separators`` writes backslashes, as some released files do. Returns the keys of a dataset
    description that reads the files back (format, root, files, identity_pattern, ...).
    """
    if format not in PUBLISHED_FORMATS:
        raise ConfigError(f"format = {format!r}: expected one of {', '.join(PUBLISHED_FORMATS)}.")
    if (manifest[["gender", "race"]].to_numpy() < 0).any():
        raise ConfigError("write_published: every frame needs a known gender and race (the formats have no unknown).")
    folder = Path(folder)
    write_frames(manifest, images, folder)
    paths = [path_prefix + p for p in manifest["path"]]
    if windows_separators:
        paths = [p.replace("/", "\\") for p in paths]
    frame = manifest.assign(written=pd.Series(paths, dtype=object, index=manifest.index))
    options: dict[str, Any] = {"format": format, "root": str(folder), "identity_pattern": IDENTITY_PATTERN}
    if format == "purdue-legacy":
        options["files"] = _write_legacy(frame, folder, six_groups=six_groups)
    elif format == "purdue-v2":
        options["files"] = _write_v2(frame, folder, noisy_seed=noisy_seed)
    else:
        options |= _write_deepfakebench(frame, folder, name=name, manipulations=manipulations)
    return options


def _write_csv(table: dict[str, Any], path: Path) -> None:
    pd.DataFrame(table).to_csv(path, index=False, lineterminator="\n")


def _write_legacy(frame: pd.DataFrame, folder: Path, *, six_groups: bool) -> dict[str, list[str]]:
    if (frame["manipulation"] > 5).any():
        raise ConfigError("purdue-legacy has spe_label 1..5 only; this domain has more manipulations.")
    gender, race = frame["gender"].to_numpy(), frame["race"].to_numpy()
    flags = lambda on: np.where(on, 1, -1)  # noqa: E731
    columns: dict[str, Any] = {"img_path": frame["written"].to_numpy(), "label": frame["label"].to_numpy(),
                               "ismale": flags(gender == 0)}
    if not six_groups:
        columns["isasian"] = flags(race == 0)
    columns |= {"iswhite": flags(race == 1), "isblack": flags(race == 2)}
    columns["intersec_label"] = to_six_groups(gender, race) if six_groups else intersection(gender, race)
    columns["spe_label"] = frame["manipulation"].to_numpy()
    table = pd.DataFrame(columns)
    files: dict[str, list[str]] = {}
    for split, parts in (("train", ("real", "fake")), ("val", ("real", "fake")), ("test", (None,))):
        in_split = (frame["split"] == split).to_numpy()
        files[split] = []
        for kind in parts:
            rows = in_split if kind is None else in_split & (frame["label"].to_numpy() == (kind == "fake"))
            part = table[rows]
            if kind == "real":  # the PG-FDD real files have no spe_label column
                part = part.drop(columns="spe_label")
            file_name = f"{kind}{split}.csv" if kind else f"{split}.csv"
            _write_csv(part.to_dict("list"), folder / file_name)
            files[split].append(file_name)
    return files


def _write_v2(frame: pd.DataFrame, folder: Path, *, noisy_seed: int) -> dict[str, list[str]]:
    gender, race = frame["gender"].to_numpy(), frame["race"].to_numpy()
    group = intersection(gender, race)
    noisy = group.copy()
    for video in pd.unique(frame["video"]):
        rng = np.random.default_rng([noisy_seed, zlib.crc32(str(video).encode())])
        if rng.random() < 0.1:
            rows = (frame["video"] == video).to_numpy()
            noisy[rows] = (group[rows][0] + 1 + rng.integers(N_GROUPS - 1)) % N_GROUPS
    identity_number = frame["identity"].str.extract(r"(\d+)")[0].astype(int).to_numpy()
    table = pd.DataFrame({
        "Image Path": frame["written"].to_numpy(), "Ground Truth Gender": 1 - gender,
        "Ground Truth Age": identity_number % 5, "Ground Truth Race": race, "Intersection": group,
        "Target": frame["label"].to_numpy(), "Specific": frame["manipulation"].to_numpy(), "intersec_label": noisy,
    })
    files = {}
    for split in SPLITS:
        _write_csv(table[(frame["split"] == split).to_numpy()].to_dict("list"), folder / f"{split}.csv")
        files[split] = [f"{split}.csv"]
    return files


def _write_deepfakebench(frame: pd.DataFrame, folder: Path, *, name: str,
                         manipulations: Sequence[str]) -> dict[str, Any]:
    codes = sorted(int(c) for c in pd.unique(frame["manipulation"]) if c > 0)
    names = {0: f"{name}_real"}
    for code in codes:
        label = manipulations[code - 1] if code <= len(manipulations) else f"fake{code}"
        names[code] = f"{name}_{label}"
    tree: dict[str, Any] = {}
    for (code, split, video), rows in frame.groupby(["manipulation", "split", "video"], sort=False):
        entry = tree.setdefault(names[int(code)], {}).setdefault(split, {}).setdefault("c23", {})
        entry[video] = {"label": names[int(code)], "frames": list(rows["written"])}
    (folder / f"{name}.json").write_text(json.dumps({name: tree}))
    videos = frame.drop_duplicates("video")
    words_gender, words_race = ("male", "female"), ("Asian", "White", "Black", "Others")
    _write_csv({"video": videos["video"].to_numpy(),
                "gender": [words_gender[g] for g in videos["gender"]],
                "race": [words_race[r] for r in videos["race"]]}, folder / "demographics.csv")
    return {"json": f"{name}.json", "sidecar": "demographics.csv", "labels": {v: k for k, v in names.items()}}
