"""Progress bars that a run can switch off (``--no-progress``) without overriding tqdm's own settings:
when shown, tqdm's defaults and its TQDM_* environment variables (e.g. TQDM_DISABLE=1 in tests) apply."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm


def progress_bar(iterable: Any = None, *, show: bool = True, **kwargs: Any) -> tqdm:
    return tqdm(iterable, **kwargs) if show else tqdm(iterable, disable=True, **kwargs)
