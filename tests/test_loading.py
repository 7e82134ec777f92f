"""How a report reads predictions (`bench.predictions.load_predictions`): every file's rows in sample order,
whatever order the file holds them in, with the store's canonical dtypes."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from bench.predictions import load_predictions
from bench.store import Store, read_predictions, write_predictions


def test_rows_come_back_in_sample_order_whatever_the_file_order(one_job: Path, tmp_path: Path) -> None:
    out = tmp_path / "results"
    shutil.copytree(one_job, out)
    before = {f.domain: f.frame for f in load_predictions(Store(out), progress=False)}
    (folder,) = (out / "runs").iterdir()
    path = sorted((folder / "predictions").glob("*.csv.gz"))[0]
    domain = path.name.removesuffix(".csv.gz")
    written = read_predictions(path)
    shuffled = written.iloc[np.random.default_rng(0).permutation(len(written))]
    write_predictions(path, shuffled)
    after = {f.domain: f.frame for f in load_predictions(Store(out), progress=False)}
    expected = written.sort_values("sample", kind="stable", ignore_index=True)
    assert expected["sample"].is_monotonic_increasing and not shuffled["sample"].is_monotonic_increasing
    pd.testing.assert_frame_equal(after[domain], expected)
    pd.testing.assert_frame_equal(before[domain], expected)
    for name, frame in after.items():  # the files left alone read as before
        pd.testing.assert_frame_equal(frame, before[name])
        assert frame["label"].dtype == np.int64 and frame["score"].dtype == np.float64
