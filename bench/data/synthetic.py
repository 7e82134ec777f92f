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

The generator is split by stage: synthetic_spec.py (the knobs, the four profiles, the random streams),
synthetic_faces.py (appearance and rendering), synthetic_artifacts.py (camera, manipulations,
compression) and synthetic_published.py (a domain written in the published annotation formats); this
module plans the identities and videos and puts the stages together. Its names are the public ones.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.data.synthetic_artifacts import MIX_GAIN, camera, compress, manipulate
from bench.data.synthetic_calibration import apportion, fake_videos
from bench.data.synthetic_faces import frame_parameters, render
from bench.data.synthetic_published import IDENTITY_PATTERN, PUBLISHED_FORMATS, write_frames, write_published
from bench.data.synthetic_spec import (
    GROUPS,
    MANIFEST_COLUMNS,
    MANIPULATIONS,
    MAX_IMAGE_SIZE,
    MIN_IMAGE_SIZE,
    N_GROUPS,
    PROFILES,
    SPLITS,
    UNIFORM_MIX,
    Streams,
    SyntheticSpec,
    without_bias,
)
from bench.errors import ConfigError

__all__ = [
    "GROUPS", "IDENTITY_PATTERN", "MANIFEST_COLUMNS", "MANIPULATIONS", "MAX_IMAGE_SIZE", "MIN_IMAGE_SIZE", "N_GROUPS",
    "PROFILES", "PUBLISHED_FORMATS", "SPLITS", "UNIFORM_MIX", "SyntheticSpec", "generate", "plan", "without_bias",
    "write_frames", "write_published",
]  # fmt: skip

# ---------------------------------------------------------------------------------------------------------
# Public entry point.


def generate(
    spec: SyntheticSpec, *, image_size: int, seed: int, scale: float = 1.0, test_scale: float = 1.0
) -> tuple[pd.DataFrame, np.ndarray]:
    """Generate one domain: the manifest (one row per frame) and the frames, row-aligned.

    ``image_size`` (16-256) is the side of the square frames, drawn directly at that size; ``seed`` picks
    the random stream (with ``spec.name``); ``scale`` multiplies the identities per split and
    ``test_scale`` those of the test split once more (at least one per split). Returns
    ``(manifest, images)`` with images a C-contiguous uint8 array (N, S, S, 3), RGB. The same arguments
    always give the same manifest and the same bytes.
    """
    if isinstance(image_size, bool) or int(image_size) != image_size or not (
        MIN_IMAGE_SIZE <= image_size <= MAX_IMAGE_SIZE
    ):
        raise ConfigError(
            f"image_size = {image_size!r}: expected an integer from {MIN_IMAGE_SIZE} to {MAX_IMAGE_SIZE}."
        )
    streams, videos = _checked_plan(spec, seed, scale, test_scale)
    frames = _frame_table(spec, videos)
    images = _draw_all(spec, streams, videos, frames, int(image_size))
    return _manifest(spec, videos, frames), images


def plan(spec: SyntheticSpec, *, seed: int, scale: float = 1.0, test_scale: float = 1.0) -> pd.DataFrame:
    """The manifest `generate` gives for the same arguments, without drawing a single image (cheap)."""
    _, videos = _checked_plan(spec, seed, scale, test_scale)
    return _manifest(spec, videos, _frame_table(spec, videos))


def _checked_plan(spec: SyntheticSpec, seed: int, scale: float, test_scale: float) -> tuple[Streams, pd.DataFrame]:
    if not isinstance(spec, SyntheticSpec):
        raise ConfigError(f"spec: expected a SyntheticSpec, got {type(spec).__name__}.")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ConfigError(f"seed = {seed!r}: expected a non-negative integer.")
    for name, value in (("scale", scale), ("test_scale", test_scale)):
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ConfigError(f"{name} = {value!r}: expected a positive number.")
    streams = Streams(int(seed), spec.name)
    return streams, _plan_videos(spec, streams, (float(scale), float(scale), float(scale) * float(test_scale)))


# ---------------------------------------------------------------------------------------------------------
# The plan: identities, their groups and splits, and every video (real or fake, manipulation, source).


def _plan_videos(spec: SyntheticSpec, streams: Streams, scales: tuple[float, float, float]) -> pd.DataFrame:
    """One row per video: identity, slot, capture, split, group, stored group, label, manipulation, source.

    Like FF++, a fake is made from a real video of its target: its ``capture`` (pose, lighting, frame
    jitter, sensor noise) is that of one of the identity's real videos, round robin, so real and fake
    differ by the manipulation only. An identity without real videos uses the fake's own capture.
    """
    counts = [max(1, round(n * scale)) for n, scale in zip(spec.identities, scales, strict=True)]
    id_split = np.repeat(np.arange(3), counts)
    id_group = np.empty(sum(counts), dtype=np.int64)
    start = 0
    for s, n in enumerate(counts):
        seats = apportion(n, spec.group_mix, spec.min_identities_per_group if SPLITS[s] != "test" else 0)
        id_group[start : start + n] = streams.rng(Streams.SPLIT, s).permutation(np.repeat(np.arange(8), seats))
        start += n

    n_videos = spec.videos_per_identity
    is_fake = np.zeros((len(id_group), n_videos), dtype=bool)
    for s in range(3):
        for g in range(N_GROUPS):
            members = np.flatnonzero((id_split == s) & (id_group == g))
            if len(members) == 0:
                continue
            n_fake = fake_videos(spec.fake_rate[g], len(members), n_videos)
            per_identity = np.full(len(members), n_fake // len(members))
            extra = streams.rng(Streams.ALLOCATION, s, g).permutation(len(members))[: n_fake % len(members)]
            per_identity[extra] += 1
            for i, k in zip(members, per_identity, strict=True):
                slots = streams.rng(Streams.ALLOCATION, s, g, int(i)).permutation(n_videos)[:k]
                is_fake[i, slots] = True

    weights = np.asarray(spec.manipulation_weights, dtype=np.float64)
    weights = weights / weights.sum()
    wrong = _wrong_annotations(spec.fake_rate)
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
            rng = streams.rng(Streams.VIDEO, i, v)
            manipulation = int(rng.choice(len(weights), p=weights)) + 1
            want_cross = rng.random() < spec.cross_group_swap_rate
            pool = (cross if want_cross else same) if len(cross) and len(same) else others
            source = int(rng.choice(pool)) if len(pool) else i
            noisy = rng.random() < spec.group_label_noise
            label = int(is_fake[i, v])
            candidates = wrong[label][id_group[i]]
            stored = candidates[int(rng.integers(len(candidates)))] if noisy and candidates else id_group[i]
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


def _wrong_annotations(fake_rate: tuple[float, ...]) -> tuple[list[list[int]], list[list[int]]]:
    """For a real (0) and a fake (1) video of each group, the other groups its annotation may wrongly name.

    Only groups that hold videos of that label: annotation noise never gives a group without fakes (Celeb-DF's
    five) a fake, nor a group without reals a real.
    """
    holds = ([r < 1 for r in fake_rate], [r > 0 for r in fake_rate])
    return tuple(
        [[h for h in ((g + k) % N_GROUPS for k in range(1, N_GROUPS)) if holds[label][h]] for g in range(N_GROUPS)]
        for label in (0, 1)
    )


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
# Putting it together, chunk by chunk (whole videos per chunk; pixel noise is drawn per video).


def _chunks(n_videos: int, frames_per_video: int, size: int) -> list[range]:
    per_chunk = max(1, (1 << 18) // (size * size * frames_per_video))
    return [range(start, min(start + per_chunk, n_videos)) for start in range(0, n_videos, per_chunk)]


def _needs_second_noise(kind: str) -> bool:
    return kind in ("blend", "noise-mismatch")


def _draw_all(
    spec: SyntheticSpec, streams: Streams, videos: pd.DataFrame, frames: pd.DataFrame, size: int
) -> np.ndarray:
    target_params, source_params = frame_parameters(spec, streams, videos)
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
        clean, inner = render(p, size, spec.blend_softness)
        out = camera(clean, spec, size)
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
            out[:, sel] = manipulate(
                kind, out[:, sel], noise[:, sel], inner[sel], strength[rows][sel], sub, extra, size, spec
            )
        out = compress(np.clip(out, 0.0, 1.0), spec.compression_quality, spec.compression_chroma_subsampling)
        images[rows] = np.clip(np.floor(out * 255.0 + 0.5), 0, 255).astype(np.uint8).transpose(1, 2, 3, 0)
    return images


def _pixel_noise(
    streams: Streams, videos: pd.DataFrame, chunk: range, second: np.ndarray, n_frames: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Unit white noise per frame of the chunk's videos (3, N, S, S): the camera's (shared by a fake and the
    real video it was made from), and a second field (the source camera's, or the mismatched sensor's) for
    the videos whose manipulation needs one."""
    first = np.empty((3, len(chunk) * n_frames, size, size), dtype=np.float32)
    other = np.zeros_like(first)
    for k, row in enumerate(chunk):
        identity = int(videos.identity[row])
        frames = slice(k * n_frames, (k + 1) * n_frames)
        rng = streams.rng(Streams.PIXELS, identity, int(videos.capture[row]))
        first[:, frames] = rng.standard_normal((3, n_frames, size, size), dtype=np.float32)
        if second[row]:
            rng = streams.rng(Streams.SECOND_PIXELS, identity, int(videos.slot[row]))
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
    towards_source = np.clip(MIX_GAIN * strength, 0.0, 1.0)
    for key in ("lx", "ly", "ambient"):
        p[key] = target[key] + towards_source * (target[f"src_{key}"] - target[key])
    face, _ = render(p, size, spec.blend_softness)
    return camera(face, spec, size) + white * np.float32(spec.camera_noise)
