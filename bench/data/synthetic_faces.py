"""Faces of the synthetic benchmark: per-identity appearance, per-video pose, lighting and capture, and the
rendering of those parameters into clean planar frames (3, N, H, W) with the inner-face mask.

Part of the generator in bench/data/synthetic.py (which explains the whole pipeline).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.data.synthetic_spec import Streams, SyntheticSpec

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


def frame_parameters(
    spec: SyntheticSpec, streams: Streams, videos: pd.DataFrame
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per-frame parameter arrays (N, ...) of the target faces and of each fake's source appearance."""
    identity_groups = videos.drop_duplicates("identity").set_index("identity").group
    identities = {
        int(i): _draw_identity(streams.rng(Streams.IDENTITY, int(i)), int(g)) for i, g in identity_groups.items()
    }
    n_frames = spec.frames_per_video
    per_video = [
        _draw_capture(streams.rng(Streams.CAPTURE, int(i), int(c)), spec, n_frames)
        | _draw_manipulation(streams.rng(Streams.MANIPULATION, int(i), int(v)), spec, n_frames)
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


def col(a: np.ndarray) -> np.ndarray:
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


def render(p: dict[str, np.ndarray], size: int, softness: float) -> tuple[np.ndarray, np.ndarray]:
    """Draw faces from per-frame parameters: images (3, N, S, S) in [0, 1] and the inner-face mask (N, S, S)."""
    grid = ((np.arange(size, dtype=np.float32) + 0.5) / size * 2.0 - 1.0).astype(np.float32)
    u, v = grid[None, None, :], grid[None, :, None]
    scale = col(p["scale"])
    du, dv = u - col(p["cx"]), v - col(p["cy"])
    cos, sin = col(np.cos(p["roll"])), col(np.sin(p["roll"]))
    x = (du * cos + dv * sin) / scale  # (N, S, S) head-local coordinates; the head is about 1.6 units tall
    y = (dv * cos - du * sin) / scale
    px = (2.0 / size) / scale  # one pixel in local units
    a, b = col(p["head_a"]), col(p["head_b"])
    shift = col(p["yaw"]) * 0.12  # features move sideways as the head turns

    # background: identity-specific gradient plus a soft stripe pattern
    angle, freq, amp = col(p["bg_angle"]), col(p["bg_freq"]), col(p["bg_amp"])
    cos_a, sin_a = np.cos(angle), np.sin(angle)
    # amp * sin(freq * (sin_a u - cos_a v) + phase), expanded so that only (N, 1, S) and (N, S, 1) need sines
    wave_u = freq * sin_a * u + col(p["bg_phase"])
    wave_v = freq * cos_a * v
    stripes = (amp * np.sin(wave_u)) * np.cos(wave_v) - (amp * np.cos(wave_u)) * np.sin(wave_v)
    t = 0.5 + 0.35 * (cos_a * u + sin_a * v) + stripes
    bg1 = col(p["bg1"])
    img = bg1 + t * (col(p["bg2"]) - bg1)

    # back hair (long hair reaches the shoulders), body, neck
    hair_w = a + 0.06 + 0.1 * col(p["hair_volume"])
    back = _ramp(_ellipse_distance(x, y, 0.0, -0.05, hair_w, b + 0.08), px)
    strand = _ramp(np.abs(x) - hair_w, px) * _ramp(y - col(p["hair_len"]), px) * _ramp(-y, px)
    _paint(img, np.maximum(back, strand), col(p["hair"]))
    _paint(img, _ramp(_ellipse_distance(x, y, 0.0, 1.55, 1.25, 0.65), px), col(p["clothes"]))
    _paint(img, _ramp(np.abs(x) - 0.26, px) * _ramp(0.3 - y, px), col(p["skin"]) * 0.8)

    # head: ellipse whose lower half narrows towards the chin by the jaw factor, with shading
    narrowing = 1.0 - (1.0 - col(p["jaw"])) * np.clip(y / b, 0.0, 1.0)
    head = _ramp(_ellipse_distance(x / narrowing, y, 0.0, 0.0, a, b), px)
    shade = 1.0 + 0.6 * (col(p["lx"]) * x + col(p["ly"]) * y) - 0.12 * (x * x + y * y)
    _paint(img, head, col(p["skin"]) * shade)

    # front hair: a cap above a curved hairline
    hairline = col(p["hairline"]) + 0.3 * (x / a) ** 2
    cap = _ramp(_ellipse_distance(x, y, 0.0, -0.03, a + 0.04, b + 0.06), px) * _ramp(y - hairline, px)
    _paint(img, cap, col(p["hair"]))

    # brows, eyes, nose, mouth and the inner-face mask, computed only inside the window that holds them
    rows, cols = _face_window(p, size, softness)
    x, y = x[:, rows, cols], y[:, rows, cols]
    face = img[:, :, rows, cols]  # a view: painting it paints img
    ey, eye_w, eye_h = col(p["eye_y"]), col(p["eye_w"]), col(p["eye_h"])
    open_h = eye_h * (1.0 - 0.9 * col(p["blink"]))
    for side in (-1.0, 1.0):
        ex = side * col(p["eye_dx"]) + shift
        _paint(face, _ramp(_ellipse_distance(x, y, ex, ey - 0.12, eye_w * 1.25, col(p["brow"]), thin=True), px),
               col(p["hair"]))  # fmt: skip
        eye = _ramp(_ellipse_distance(x, y, ex, ey, eye_w, open_h, thin=True), px)
        _paint(face, eye, _WHITE_OF_EYE)
        iris = _ramp(_ellipse_distance(x, y, ex + shift * 0.3, ey, eye_h, eye_h), px)
        _paint(face, eye * iris, col(p["iris"]))
    nose = _ramp(_ellipse_distance(x, y, shift * 1.3, 0.12, col(p["nose_w"]), col(p["nose_len"])), px)
    nostrils = _ramp(_ellipse_distance(x, y, shift * 1.3, 0.26, col(p["nose_w"]) * 1.1, 0.025, thin=True), px)
    face *= 1.0 - 0.16 * nose - 0.3 * nostrils
    my, mouth_w, mouth_open = col(p["mouth_y"]), col(p["mouth_w"]), col(p["mouth_open"])
    lips_h = col(p["mouth_h"]) * (1.0 + 1.5 * mouth_open)
    _paint(face, _ramp(_ellipse_distance(x, y, shift, my, mouth_w, lips_h, thin=True), px), col(p["lip"]))
    inner_h = col(p["mouth_h"]) * mouth_open + 1e-3
    _paint(face, _ramp(_ellipse_distance(x, y, shift, my, mouth_w * 0.8, inner_h, thin=True), px),
           _INSIDE_OF_MOUTH)  # fmt: skip

    # inner face region: where every manipulation leaves its artifact, with a feathered edge
    ramp = _ramp(_ellipse_distance(x, y, shift, *_INNER_FACE) + 0.5 * softness, np.maximum(softness, px))
    inner = np.zeros(img.shape[1:], dtype=np.float32)
    inner[:, rows, cols] = ramp * ramp * (3.0 - 2.0 * ramp)  # smoothstep

    # global illumination of the scene
    img *= col(p["ambient"]) * (1.0 + 0.4 * (col(p["lx"]) * u + col(p["ly"]) * v))
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
