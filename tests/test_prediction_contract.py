"""The prediction contract of a finished job: each predictions file holds the test split of its domain row
for row (ids, label, every demographic attribute, manipulation as the manifest has them), and each logit is
the saved model's output for that row's image, recomputed here from the cached pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ONE_JOB_ARGS, ONE_JOB_TESTS

from bench.config import build_config, resolve_method_config
from bench.data.cache import ensure_cache
from bench.data.datasets import discover
from bench.data.loader import MEAN, STD
from bench.method import METHODS
from bench.store import JobFiles, read_predictions
from bench.train import load_trained

MANIFEST_COLUMNS = ["sample", "video", "identity", "label", "gender", "race", "intersection", "manipulation"]


@pytest.fixture(scope="module")
def job(one_job: Path):
    (folder,) = (one_job / "runs").iterdir()
    config = json.loads((folder / "config.json").read_text())
    sets = [ONE_JOB_ARGS[i + 1] for i, flag in enumerate(ONE_JOB_ARGS) if flag == "--set"]
    run = build_config(preset=ONE_JOB_ARGS[ONE_JOB_ARGS.index("--preset") + 1], sets=sets)
    return folder, run, discover(run.data), config


@pytest.mark.parametrize("domain", ONE_JOB_TESTS)
def test_predictions_match_the_test_manifest_row_for_row(job, domain: str) -> None:
    folder, run, descriptions, config = job
    cache = ensure_cache(descriptions[domain], run.data)
    manifest = cache.manifest.iloc[cache.rows("test")].reset_index(drop=True)
    frame = read_predictions(folder / "predictions" / f"{domain}.csv.gz")
    assert len(frame) == len(manifest) == config["predictions"][domain]["frames"]
    for column in MANIFEST_COLUMNS:
        assert list(frame[column]) == list(manifest[column]), column
    assert (frame["domain"] == domain).all()
    assert np.allclose(frame["score"], 1 / (1 + np.exp(-frame["logit"])))
    # the data must exercise the columns: several genders, races, groups, both labels, several manipulations
    assert frame["gender"].nunique() >= 2 and frame["race"].nunique() >= 3 and frame["label"].nunique() == 2
    assert frame["manipulation"].nunique() >= 2 and (frame["gender"] != frame["race"]).any()


@pytest.mark.parametrize("domain", ONE_JOB_TESTS)
def test_each_logit_is_the_models_output_for_that_rows_image(job, domain: str) -> None:
    folder, run, descriptions, config = job
    train_cache = ensure_cache(descriptions[config["job"]["train"]], run.data)
    method_cls = METHODS.get(config["job"]["method"])
    method_config = resolve_method_config(method_cls.Config, run, config["job"]["method"])
    method = load_trained(method_cls, method_config, train_cache, run.train, torch.device("cpu"), JobFiles(folder))
    method.eval()

    cache = ensure_cache(descriptions[domain], run.data)
    rows = cache.rows("test")
    frame = read_predictions(folder / "predictions" / f"{domain}.csv.gz")
    labels = frame["label"].to_numpy()
    picks = sorted({0, len(rows) - 1, len(rows) // 2, int(np.flatnonzero(labels == 0)[-1]),
                    int(np.flatnonzero(labels == 1)[0]), 7, 13})
    pixels = torch.from_numpy(np.stack([cache.images[rows[i]] for i in picks])).permute(0, 3, 1, 2).float()
    images = (pixels / 255.0 - MEAN) / STD
    with torch.no_grad():
        expected = method(images).double().numpy()
    got = frame["logit"].to_numpy()[picks]
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4), (got, expected)
    # and the check can tell rows apart: the picked logits are not all alike
    assert np.ptp(expected) > 1e-3


def test_logits_do_not_depend_on_the_scoring_batch_size(job) -> None:
    """Why train.eval_batch_size is not part of a job's identity: presets may pick the batch size that scores
    fastest on their device without changing a job's numbers."""
    from bench.data.loader import DeviceLoader
    from bench.device import Runtime
    from bench.predict import predict_logits

    folder, run, descriptions, config = job
    train_cache = ensure_cache(descriptions[config["job"]["train"]], run.data)
    method_cls = METHODS.get(config["job"]["method"])
    method_config = resolve_method_config(method_cls.Config, run, config["job"]["method"])
    method = load_trained(method_cls, method_config, train_cache, run.train, torch.device("cpu"), JobFiles(folder))
    cache = ensure_cache(descriptions[ONE_JOB_TESTS[0]], run.data)
    rows = cache.rows("test")[:600]
    loader = DeviceLoader(cache, device=torch.device("cpu"), channels_last=run.train.channels_last)
    runtime = Runtime(device=torch.device("cpu"))
    by_size = {size: predict_logits(method, loader, rows, batch_size=size, runtime=runtime) for size in (7, 128, 256)}
    assert len(by_size[256]) == len(rows) and np.ptp(by_size[256]) > 1e-3
    for size in (7, 128):
        np.testing.assert_allclose(by_size[size], by_size[256], rtol=1e-6, atol=1e-6)
