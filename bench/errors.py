"""Errors a user can cause.

The CLI turns a `BenchError` into one line on stderr and exit code 2, never a traceback: the message
itself must name the bad value and the fix. Anything else that escapes is a bug in the harness.
"""

from __future__ import annotations


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
