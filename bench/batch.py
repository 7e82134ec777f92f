"""The batch a method's ``update`` receives: the contract between the loader and every method.

It lives apart from the loader so that a method depends on this small type, never on how batches are
gathered (the loader can change without touching any method).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """A batch as a method sees it; every tensor is on the device, labels are int64 of shape (N,)."""

    images: torch.Tensor  # (N, 3, H, W) float, normalised
    label: torch.Tensor  # 0 real, 1 fake
    group: torch.Tensor  # intersectional group 0..7, -1 unknown
    gender: torch.Tensor
    race: torch.Tensor
    manipulation: torch.Tensor  # 0 real, 1..K
    video: torch.Tensor  # video codes (factorised ids), for methods that pool by video
    rows: np.ndarray  # rows of the cache, for debugging and tests

    def __len__(self) -> int:
        return int(self.label.shape[0])
