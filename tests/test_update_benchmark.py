"""One training step of each method at the default preset's size (32 px, 32 real/fake pairs, bench-small).

Run `pytest tests/test_update_benchmark.py --benchmark-enable` to compare: the fair losses must cost at
most 10% more than the baseline's step (their CVaRs are a sort and a few vector operations); PG-FDD runs
three backbones, a decoder and SAM's two passes. The loss-and-sampling family (reweight, resample, group-dro,
daw-fdd-lb) must stay within 10% too: a gather, an index_add or the same sort."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.batch import Batch
from bench.config import build_config, resolve_method_config
from bench.method import METHODS, MethodInfo


def default_batch(pairs: int = 32) -> Batch:
    g = torch.Generator().manual_seed(0)
    n = 2 * pairs
    label = torch.cat([torch.zeros(pairs), torch.ones(pairs)]).long()
    group = torch.randint(0, 8, (n,), generator=g)
    return Batch(images=torch.randn(n, 3, 32, 32, generator=g).contiguous(memory_format=torch.channels_last),
                 label=label, group=group, gender=group // 4, race=group % 4,
                 manipulation=label * torch.randint(1, 5, (n,), generator=g), video=torch.arange(n),
                 rows=np.arange(n))


@pytest.mark.parametrize("name", ["xception", "dag-fdd", "daw-fdd", "xception-sam", "pg-fdd", "pg-fdd-nosam",
                                  "reweight", "resample", "group-dro", "daw-fdd-lb",
                                  "adv-debias", "domain-ind", "eo-reg", "swad"])
def test_update_step(benchmark, name: str) -> None:
    torch.manual_seed(0)
    run = build_config(preset="default")
    cls = METHODS.get(name)
    info = MethodInfo(image_size=32, group_counts=(100,) * 8, num_manipulations=4, epochs=1, steps_per_epoch=1,
                      device=torch.device("cpu"), cell_counts=(20, 80) * 8,
                      sampler="balanced" if cls.needs.balanced else "paired")
    method = cls(resolve_method_config(cls.Config, run, name), info).to(memory_format=torch.channels_last)
    method.train()
    batch = default_batch()
    benchmark.group = "update-step"
    logs = benchmark.pedantic(method.update, args=(batch,), rounds=20, warmup_rounds=3)
    assert torch.isfinite(torch.as_tensor(logs["loss"]))
