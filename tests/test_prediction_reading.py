"""Reading many prediction files at once (`store.read_prediction_files`) gives exactly what reading each
alone gives (`store.read_predictions`): the same frames and dtypes, and for a damaged file the same error,
naming that file and row. The files are written here by hand, in the published shape and in odd ones."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import pytest

from bench import store
from bench.errors import BenchError

HEADER = "sample,video,identity,domain,label,logit,score,gender,race,intersection,manipulation"


def row(sample: str, label: int = 1, logit: str = "0.25", score: str = "0.562", group: int = 5) -> str:
    return f"{sample},{sample[:6]}_v0,{sample[:6]},synth-ff,{label},{logit},{score},1,1,{group},{label}"


def write(folder: Path, name: str, lines: list[str], *, newline: str = "\n") -> Path:
    path = folder / f"{name}.csv.gz"
    path.write_bytes(gzip.compress(newline.join(lines).encode() + newline.encode(), mtime=0))
    return path


def read_alone(paths: list[Path]) -> list:
    return [store.read_predictions(p) for p in paths]


def assert_same(together: list, alone: list) -> None:
    assert len(together) == len(alone)
    for a, b in zip(together, alone, strict=True):
        assert list(a.columns) == list(b.columns) and list(a.dtypes) == list(b.dtypes)
        assert a.equals(b) and a.index.equals(b.index)


def test_plain_files_are_read_together_and_odd_ones_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    paths = [
        write(tmp_path, "a", [HEADER, row("id0003_f1"), row("id0001_f0", 0, "-1.5", "0.18"), row("id0002_f4")]),
        write(tmp_path, "b", [HEADER, row("id0007_f0", 0, "-inf", "0.0"), row("id0008_f2", group=0)]),  # saturated
        write(tmp_path, "quoted", [HEADER, row('"id,0009"'), row("id0010_f0")]),
        write(tmp_path, "crlf", [HEADER, row("id0011_f0"), row("id0012_f0")], newline="\r\n"),
        write(tmp_path, "reordered", ["score,label,sample,video,identity,domain,logit,gender,race,intersection,"
                                      "manipulation", "0.5,1,id0013_f0,v,i,synth-ff,0.0,1,1,5,1"]),
        write(tmp_path, "c", [HEADER, *(row(f"id{n:04d}_f0", n % 2, group=n % 8) for n in range(20, 40))]),
    ]
    alone = read_alone(paths)
    read_on_its_own = []
    original = store.read_predictions
    monkeypatch.setattr(store, "read_predictions", lambda p: read_on_its_own.append(p.stem) or original(p))
    assert_same(store.read_prediction_files(paths), alone)
    assert sorted(read_on_its_own) == ["crlf.csv", "quoted.csv", "reordered.csv"]  # a, b and c parsed together
    assert alone[2]["sample"].iloc[0] == "id,0009"


@pytest.mark.parametrize("damaged", [
    [HEADER, row("id0100_f0"), row("id0101_f0", score="1.5")],  # out of range: fails the checks together
    [HEADER, row("id0100_f0"), row("id0101_f0", label=2)],
    [HEADER, row("id0100_f0"), row("id0101_f0", logit="")],  # an empty logit: a NaN in a float column
    [HEADER, row("id0100_f0"), row("id0101_f0").rsplit(",", 1)[0]],  # a field short: the joint parse is not canonical
    [HEADER, row("id0100_f0"), row("id0101_f0") + ",7"],  # a field too many: the joint parse fails
    [HEADER, row("id0100_f0"), row("id0101_f0", group=1).replace(",1,1,1,1", ",x,1,1,1")],  # text in gender
    [HEADER],  # no rows
], ids=["score-range", "label-two", "logit-empty", "field-short", "field-extra", "gender-text", "header-only"])
def test_a_damaged_file_among_plain_ones_fails_as_it_does_alone(damaged: list[str], tmp_path: Path) -> None:
    good = [write(tmp_path, f"good{k}", [HEADER, row(f"id000{k}_f0"), row(f"id001{k}_f1")]) for k in range(3)]
    paths = [good[0], write(tmp_path, "damaged", damaged), *good[1:]]
    with pytest.raises(BenchError) as alone:
        read_alone(paths)
    assert "damaged.csv.gz" in str(alone.value)
    with pytest.raises(BenchError, match=re.escape(str(alone.value))):
        store.read_prediction_files(paths)
