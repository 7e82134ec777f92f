"""The report's PNG encoder: Pillow (an independent decoder, which checks every chunk's CRC) reads back the
exact pixels, for noise, flat plot-like images and odd sizes."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bench.png import SIGNATURE, png_bytes


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("height, width", [(1, 1), (7, 13), (64, 301)])
def test_pillow_reads_back_the_rgb_pixels(height: int, width: int) -> None:
    rgba = np.random.default_rng(height * width).integers(0, 256, size=(height, width, 4), dtype=np.uint8)
    image = _decoded(png_bytes(rgba))
    assert image.format == "PNG" and image.mode == "RGB" and image.size == (width, height)
    np.testing.assert_array_equal(np.asarray(image), rgba[:, :, :3])


def test_a_flat_plot_like_image_is_small_and_exact() -> None:
    rgba = np.full((200, 300, 4), 255, dtype=np.uint8)
    rgba[50:60, :, :3] = (31, 119, 180)  # a line across
    rgba[:, 100, :3] = 0
    data = png_bytes(rgba)
    assert data.startswith(SIGNATURE)
    assert len(data) < rgba.size // 50  # runs of equal pixels deflate without any row filter
    np.testing.assert_array_equal(np.asarray(_decoded(data)), rgba[:, :, :3])


def test_an_image_that_is_not_rgba_bytes_is_refused() -> None:
    with pytest.raises(ValueError, match=r"\(height, width, 4\) uint8"):
        png_bytes(np.zeros((4, 4, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="uint8"):
        png_bytes(np.zeros((4, 4, 4), dtype=np.float32))
