"""How the command line reports an error: one line, never a traceback (see main.LazyGroup)."""

from __future__ import annotations

from stackwatch.core.errors import StackwatchError

DEBUG_ENV = "STACKWATCH_DEBUG"
"""Set (to anything) to see the traceback of an unexpected error instead of its one line."""


def one_line(message: str) -> str:
    """``message`` on one line (a multi-line cause is joined with '; ')."""
    return "; ".join(part.strip() for part in str(message).splitlines() if part.strip())


def error_line(exc: BaseException) -> str:
    """The one line an unexpected exception is reported as."""
    if isinstance(exc, StackwatchError):
        return one_line(str(exc))
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return one_line(f"{type(exc).__name__}: {exc} (run again with {DEBUG_ENV}=1 for the traceback)")
