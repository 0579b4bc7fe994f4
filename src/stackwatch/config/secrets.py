"""Secrets by reference: a setting that holds a password, token or key is written as
``$env:NAME`` (an environment variable) or ``$file:/path`` (a file's content, trailing newline
removed), never as the secret itself. A literal is a configuration error, so a config file
can be shared, reviewed and committed without leaking anything."""

from __future__ import annotations

import os
from pathlib import Path

from stackwatch.core.errors import ConfigError

ENV_PREFIX = "$env:"
FILE_PREFIX = "$file:"


class Secret:
    """A resolved secret. ``str()`` and ``repr()`` show the reference, never the value."""

    __slots__ = ("_value", "reference")

    def __init__(self, reference: str, value: str) -> None:
        self.reference = reference
        self._value = value

    @property
    def value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.reference!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.reference == self.reference and other._value == self._value

    def __hash__(self) -> int:
        return hash(self.reference)


def is_reference(text: str) -> bool:
    return text.startswith((ENV_PREFIX, FILE_PREFIX))


def resolve_secret(
    text: object, path: str | None = None, line: int | None = None, field: str | None = None
) -> Secret:
    """Resolve ``$env:NAME`` / ``$file:/path``; anything else is an error (never inline)."""
    if not isinstance(text, str) or not is_reference(text):
        raise ConfigError(
            "secrets must be given by reference ($env:NAME or $file:/path), never inline", path, line, field
        )
    if text.startswith(ENV_PREFIX):
        name = text[len(ENV_PREFIX) :]
        if not name:
            raise ConfigError("empty environment variable name in $env:", path, line, field)
        value = os.environ.get(name)
        if value is None:
            raise ConfigError(f"environment variable {name} is not set", path, line, field)
        return Secret(text, value)
    file_path = Path(text[len(FILE_PREFIX) :])
    if not file_path.is_absolute():
        raise ConfigError(f"secret file {file_path} must be an absolute path", path, line, field)
    try:
        value = file_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read secret file {file_path}: {exc.strerror}", path, line, field) from None
    return Secret(text, value.rstrip("\r\n"))
