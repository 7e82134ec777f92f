"""Balanced resampling (as in MEDFAIR, Zong et al., ICLR 2023): the baseline trained on batches in which every
(intersectional group x label) cell of the training split is equally likely.

Only the data changes: the method asks for cell-balanced batches through ``needs`` and the runner's
`bench.data.loader.BalancedSampler` draws them (a cell uniformly, then a frame of it), with as many
images per batch and batches per epoch as the configured sampler gives every other method.
"""

from __future__ import annotations

from bench.method import METHODS, Needs
from methods.xception import Xception


@METHODS.register()
class Resample(Xception):
    """The baseline's loss on cell-balanced batches."""

    name = "resample"
    needs = Needs(groups=True, balanced=True)
    description = "balanced resampling (MEDFAIR, ICLR 2023): every (group x label) cell equally likely per draw"
