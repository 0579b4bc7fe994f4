"""One exception hierarchy. Per-record failures never travel up the pipeline: they become
``unparsed`` events. Only configuration and integrity errors stop the process."""

from __future__ import annotations


class StackwatchError(Exception):
    """Base of every error stackwatch raises on purpose."""


class LocatedError(StackwatchError):
    """An error in a file the user wrote, with a ``file:line: message`` location."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path = path
        self.line = line
        self.field = field
        self.reason = message
        where = path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        prefix = f"{field}: " if field else ""
        super().__init__(f"{where}: {prefix}{message}")


class ConfigError(LocatedError):
    """A configuration file is invalid."""


class RuleError(LocatedError):
    """A rule file is invalid (unknown field, bad condition, broken vector...)."""


class IntegrityError(StackwatchError):
    """The store failed verification."""


class StoreError(StackwatchError):
    """The store cannot do what was asked (schema too new, closed, corrupt)."""
