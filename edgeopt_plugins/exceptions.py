"""Error and warning classes of edgeopt-plugins.

Every error raised on purpose by the library derives from :class:`EdgeOptError`.
Errors caused by what a user passed in (a file, an argument, an architecture)
also derive from :class:`ValueError`, so ``except ValueError`` keeps working for
code that does not know this library. The CLI turns any :class:`EdgeOptError`
into one line on stderr and exit code 2.

Example:
    >>> from edgeopt_plugins.exceptions import InputError
    >>> try:
    ...     raise InputError("profile.csv line 3: latency_ms is negative (-1.0)")
    ... except ValueError as err:
    ...     print(err)
    profile.csv line 3: latency_ms is negative (-1.0)
"""

from __future__ import annotations

__all__ = [
    "EdgeOptError",
    "InputError",
    "ArchitectureError",
    "DataNotFoundError",
    "ModelFormatError",
    "InfeasibleBudgetError",
    "MeasurementError",
    "StorageError",
    "EdgeOptWarning",
]


class EdgeOptError(Exception):
    """Root of all errors raised on purpose by edgeopt-plugins."""


class InputError(EdgeOptError, ValueError):
    """Bad input from the user: the message says what, where and why."""


class ArchitectureError(InputError):
    """An architecture that is malformed or outside its search space."""


class DataNotFoundError(InputError, FileNotFoundError):
    """Benchmark data or a user file could not be found."""


class ModelFormatError(InputError):
    """A saved model folder that is unreadable, tampered with or from another version."""


class InfeasibleBudgetError(InputError):
    """No design of the space or candidate list can meet the requested budget."""


class MeasurementError(EdgeOptError, RuntimeError):
    """A device measurement failed, timed out or returned an invalid value."""


class StorageError(EdgeOptError, RuntimeError):
    """A study storage could not be reached after bounded retries."""


class EdgeOptWarning(UserWarning):
    """Warnings of edgeopt-plugins (silent fallbacks the user may switch off)."""
