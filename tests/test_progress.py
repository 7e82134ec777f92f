"""Progress bars: slow redraws in log files, tqdm's defaults on a terminal, TQDM_* variables respected."""

from __future__ import annotations

import io

import pytest

from bench.progress import LOG_FILE_INTERVAL_S, progress_bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# conftest switches bars off through TQDM_DISABLE, which tqdm reads at import: ON overrides it per call.
ON = {"disable": False}


@pytest.fixture(autouse=True)
def no_interval_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TQDM_MININTERVAL", raising=False)


def test_log_file_gets_rare_redraws_and_the_final_state() -> None:
    log = io.StringIO()
    with progress_bar(range(500), file=log, desc="train", **ON) as bar:
        assert bar.mininterval == LOG_FILE_INTERVAL_S
        for _ in bar:
            pass
    text = log.getvalue()
    assert "500/500" in text and text.count("\r") <= 3  # first draw, final draw, close


def test_terminal_keeps_tqdm_defaults() -> None:
    with progress_bar(range(3), file=Terminal(), **ON) as bar:
        assert bar.mininterval == 0.1


def test_environment_and_explicit_settings_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TQDM_MININTERVAL", "2")  # tqdm applies it (read at its import); we must not override
    with progress_bar(range(3), file=io.StringIO(), **ON) as bar:
        assert bar.mininterval != LOG_FILE_INTERVAL_S
    monkeypatch.delenv("TQDM_MININTERVAL")
    with progress_bar(range(3), file=io.StringIO(), mininterval=5, **ON) as bar:
        assert bar.mininterval == 5


def test_hidden_bar_writes_nothing() -> None:
    log = io.StringIO()
    for _ in progress_bar(range(10), show=False, file=log):
        pass
    assert log.getvalue() == ""
