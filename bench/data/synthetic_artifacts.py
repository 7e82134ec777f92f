"""What happens to a rendered face after rendering in the synthetic benchmark: the domain's camera (blur,
white balance, gamma), the manipulations of fakes, and the JPEG-like compression of the domain.

Part of the generator in bench/data/synthetic.py (which explains the whole pipeline and its order).
"""

from __future__ import annotations

import math

import numpy as np

from bench.data.synthetic_faces import col
from bench.data.synthetic_spec import SyntheticSpec

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


def camera(img: np.ndarray, spec: SyntheticSpec, size: int) -> np.ndarray:
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
    ri = np.cos(np.pi * (i[None, :, None] + col(phase_i)))  # +-1 by row parity
    rj = np.cos(np.pi * (i[None, None, :] + col(phase_j)))
    return (ri + rj + ri * rj) / 3.0


# Artifact amplitudes at strength 1 (absolute intensities; blur sigmas in px@64). Mixing weights (how much
# of a blurred, resampled or pasted face replaces the original) are min(1, MIX_GAIN * strength).
MIX_GAIN = 2.0
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
    return col(np.clip(MIX_GAIN * strength, 0.0, 1.0))


def manipulate(
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
    s = col(strength)  # (N, 1, 1)
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
        shift = _COLOUR_SHIFT * s * col(p["colour_dir"])
        contrast = (_COLOUR_CONTRAST * s * col(p["contrast"])) * (captured - _inner_mean(captured, m))
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


def compress(img: np.ndarray, quality: int, chroma_subsampling: bool) -> np.ndarray:
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
