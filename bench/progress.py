"""Progress bars that a run can switch off (``--no-progress``) without overriding tqdm's own settings:
when shown, tqdm's defaults and its TQDM_* environment variables (e.g. TQDM_DISABLE=1 in tests) apply.

Written to a log file instead of a terminal (a batch job, ``2> run.log``), a bar redraws at most every
30 seconds unless TQDM_MININTERVAL says otherwise, so the log keeps the progress without thousands of
redraws."""

from __future__ import annotations

import os
import sys
from typing import Any

from tqdm.auto import tqdm

LOG_FILE_INTERVAL_S = 30.0


def progress_bar(iterable: Any = None, *, show: bool = True, **kwargs: Any) -> tqdm:
    if not show:
        return tqdm(iterable, disable=True, **kwargs)
    if "TQDM_MININTERVAL" not in os.environ and not _is_terminal(kwargs.get("file", sys.stderr)):
        kwargs.setdefault("mininterval", LOG_FILE_INTERVAL_S)
    return tqdm(iterable, **kwargs)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False
