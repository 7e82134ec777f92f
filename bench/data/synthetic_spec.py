"""The knobs of a synthetic domain (`SyntheticSpec`), the profiles shaped like the real datasets (four
calibrated to the released test files, four stylised shortcut ones), the switch that turns every bias knob
off, and the seeded random streams the generator draws from.

The generator itself is bench/data/synthetic.py; this module holds only what describes a domain, so a
description file can be checked without importing the renderer.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bench.data.synthetic_calibration import REAL_TEST_FRAMES, fake_share, group_mix, needed_test_identities
from bench.errors import ConfigError
from bench.groups import INTERSECTIONS, NUM_INTERSECTIONS

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
    # Each group with a positive mix gets at least this many identities in the training and validation splits
    # (if the split is big enough); the test split follows the mix alone, so its group shares stay those set.
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
# The four domains shaped like the real datasets: first the stylised shortcut world (stress tests), then
# the calibrated profiles built from it (the default benchmark).

# Fake rates of the FF++-like shortcut domain; the DFDC-like one mirrors them (min + max - rate) so the
# group -> label shortcut a detector learns on FF points the wrong way there.
_FF_FAKE_RATE = (0.55, 0.35, 0.85, 0.65, 0.50, 0.30, 0.80, 0.60)
# Artifact visibility per group (weaker colour seams on darker skin, hair over the boundary, ...).
_FF_VISIBILITY = (0.9, 1.0, 0.3, 0.6, 0.8, 0.9, 0.25, 0.5)


def _mirrored(rates: Sequence[float]) -> tuple[float, ...]:
    low, high = min(rates), max(rates)
    return tuple(round(low + high - r, 6) for r in rates)


# Stylised, not calibrated: group mixes and per-group fake rates chosen by hand, with a strong group ->
# label shortcut on FF (0.30-0.85 fake by group) that DFDC reverses.
SHORTCUT_PROFILES: dict[str, SyntheticSpec] = {
    # FF++-like training domain: mostly White, about half female, four manipulations with labels,
    # mild compression (c23-like), some annotation noise.
    "ff-shortcut": SyntheticSpec(
        name="synth-ff-shortcut",
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
    "celebdf-shortcut": SyntheticSpec(
        name="synth-celebdf-shortcut",
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
    "dfd-shortcut": SyntheticSpec(
        name="synth-dfd-shortcut",
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
    "dfdc-shortcut": SyntheticSpec(
        name="synth-dfdc-shortcut",
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


def _calibrated(profile: str) -> SyntheticSpec:
    """The shortcut profile of the same dataset with its real counterpart's group mix and per-group fake
    shares, and a test split sized so every measured group has enough real and fake videos (its training
    and validation splits keep their size). Everything physical stays: artifact visibility by group, label
    noise, cross-group swaps, manipulations, camera and compression."""
    shortcut = SHORTCUT_PROFILES[f"{profile}-shortcut"]
    counts = REAL_TEST_FRAMES[profile]
    test = needed_test_identities(counts, videos_per_identity=shortcut.videos_per_identity,
                                  label_noise=shortcut.group_label_noise)
    return dataclasses.replace(shortcut, name=f"synth-{profile}", identities=(*shortcut.identities[:2], test),
                               group_mix=group_mix(counts), fake_rate=fake_share(counts))


# The default benchmark's domains, calibrated to the released test files (docs/DATA.md).
CALIBRATED_PROFILES: dict[str, SyntheticSpec] = {name: _calibrated(name) for name in REAL_TEST_FRAMES}
PROFILES: dict[str, SyntheticSpec] = {**CALIBRATED_PROFILES, **SHORTCUT_PROFILES}


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
# Random streams.


class Streams:
    """Independent generators addressed by a purpose and indices, never by the order of the calls."""

    IDENTITY, VIDEO, CAPTURE, PIXELS, SPLIT, ALLOCATION, MANIPULATION, SECOND_PIXELS = range(8)

    def __init__(self, seed: int, name: str) -> None:
        self._entropy = (seed, zlib.crc32(name.encode("utf-8")))

    def rng(self, *key: int) -> np.random.Generator:
        return np.random.default_rng(np.random.SeedSequence(self._entropy, spawn_key=key))
