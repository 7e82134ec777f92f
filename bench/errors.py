"""Errors a user can cause.

The CLI turns a `BenchError` into one line on stderr and exit code 2, never a traceback: the message
itself must name the bad value and the fix. Anything else that escapes is a bug in the harness.
"""

from __future__ import annotations

import os
from pathlib import Path


class BenchError(Exception):
    """A mistake in the user's input (flag, name, file, config) that the message explains."""

    exit_code = 2


class UnknownNameError(BenchError):
    """A name that no registry holds; the message lists the available names and the closest match."""


class ConfigError(BenchError):
    """A configuration value or key that is not valid."""


class DataError(BenchError):
    """A dataset description, manifest or cache that cannot be used as it is."""


class TrainingDiverged(RuntimeError):
    """A job's loss became NaN or infinite; that job fails, the others go on."""


def absent(path: Path, *, folder: bool = False) -> str:
    """What is wrong with a path that is not the file (or, ``folder``, the folder) it should be: the words
    after its name, so a message never says "does not exist" of something that does."""
    if folder and path.exists() and not path.is_dir():
        return "is a file, not a folder"
    if not folder and path.is_dir():
        return "is a folder, not a file"
    return "does not exist"


def folder_problem(path: Path, *, write: bool = True) -> str | None:
    """Why ``path`` cannot be used as a folder (it, or the nearest part of it that exists, is a file; or,
    with ``write``, that part cannot be written), in words that follow the path; None when it can."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        return f"{str(probe)!r} is a file, not a folder"
    if write and (why := _cannot_write(probe)):
        return f"{str(probe)!r} cannot be written ({why})"
    return None


def _cannot_write(folder: Path) -> str | None:
    """Why nothing can be created in ``folder`` (an existing folder), or None: tried with an empty folder
    made and removed at once, since the permission bits do not tell (root passes them on a read-only file
    system, and in /proc or /sys)."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".bench-write-test-", dir=folder))
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    return None
