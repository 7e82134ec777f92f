"""Decoding one image file into a cache frame: RGB, square, at the cache size, uint8.

Every real frame goes through `load_frame` exactly once, when its cache is built, so the choices made
here (colour order, crop, resampling filter) are the ones every method sees. Pillow decodes to RGB
order (never OpenCV's BGR); grey, palette, CMYK, alpha and 16-bit images are converted to 8-bit RGB;
EXIF orientation is applied, so a photo looks the way a viewer shows it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

Crop = Literal["center", "stretch"]
CROPS: tuple[str, ...] = ("center", "stretch")


class FrameError(Exception):
    """An image file that cannot be turned into a frame; the message completes "<path> ..." for a user."""


def load_frame(path: str | Path, *, size: int, crop: Crop = "center") -> np.ndarray:
    """Decode ``path`` into a (size, size, 3) uint8 RGB array.

    ``crop``: ``"center"`` takes the largest centred square (keeps the aspect ratio of faces),
    ``"stretch"`` resizes the whole image to a square (what the PG-FDD code does with its crops).
    Resampling is Pillow's antialiased bilinear filter, the filter of torchvision's ``Resize``, so a
    downscaled frame has no aliasing. JPEG files are decoded at a reduced DCT scale when the frame is
    much smaller than the file (Pillow's draft mode), which is several times faster and loses nothing
    at the target size. Raises `FrameError` with a readable reason.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if opened.format == "JPEG":
                    opened.draft("RGB", (size, size))
                image = ImageOps.exif_transpose(opened)
                image = _to_rgb(image)
                image.load()
    except FileNotFoundError:
        raise FrameError("does not exist") from None
    except IsADirectoryError:
        raise FrameError("is a folder, not an image file") from None
    except UnidentifiedImageError:
        raise FrameError("is not an image file Pillow can read (empty, cut short or another format)") from None
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise FrameError(f"cannot be decoded ({type(exc).__name__}: {exc})") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise FrameError(f"has no pixels ({width}x{height})")
    box = None
    if crop == "center" and width != height:
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        box = (left, top, left + side, top + side)
    if image.size != (size, size) or box is not None:
        image = image.resize((size, size), Image.Resampling.BILINEAR, box=box)
    frame = np.asarray(image, dtype=np.uint8)
    if frame.shape != (size, size, 3):  # a bug here, not a user's file
        raise AssertionError(f"{path}: decoded to shape {frame.shape}")
    return frame


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only, after EXIF orientation (for reports)."""
    with Image.open(path) as opened:
        width, height = opened.size
        orientation = opened.getexif().get(0x0112, 1)
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _to_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB from any mode Pillow decodes (16-bit grey is scaled, not clipped)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N"):
        grey = np.asarray(image, dtype=np.float64)
        scale = 257.0 if grey.max(initial=0) > 255 else 1.0
        image = Image.fromarray(np.clip(np.round(grey / scale), 0, 255).astype(np.uint8), mode="L")
    elif image.mode == "F":
        image = Image.fromarray(np.clip(np.round(np.asarray(image)), 0, 255).astype(np.uint8), mode="L")
    elif image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")  # keep the colours under transparent pixels, drop the alpha
    return image.convert("RGB")
