"""Typed settings from YAML mappings, with ``file:line: field: reason`` errors.

Every settings class is a frozen dataclass whose fields say their type, default and help text
(``setting(default, "help")``): the declaration is the documentation, the validator and the
sample's checklist at once. ``build(cls, mapping)`` converts a mapping loaded with
``detect.yaml_locations`` (which remembers lines) into an instance. Supported field types: str, int,
float, bool, ``list[str]``, ``dict[str, str]``, ``Seconds`` (``30s``, ``5m``), ``ByteSize``
(``64k``, ``8M``), ``Address`` (``host:port``), ``Secret`` (a reference, see ``secrets``),
nested settings classes, lists of them, ``X | None`` and ``Any`` (kept as given).
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import types
import typing
from functools import cache
from typing import Any, NamedTuple, TypeVar, Union, get_args, get_origin

from stackwatch.config.secrets import Secret, resolve_secret
from stackwatch.core.errors import ConfigError, RuleError
from stackwatch.detect.model import parse_duration
from stackwatch.detect.yaml_locations import LocDict, LocList

T = TypeVar("T")


class Seconds(float):
    """A duration in seconds; written as a number or ``30s``, ``5m``, ``1h30m``."""


class ByteSize(int):
    """A size in bytes; written as a number or ``512``, ``64k``, ``8M``, ``1G``."""


class Address(NamedTuple):
    """A listen address: ``host:port``, ``[::1]:514`` or a bare port (all interfaces)."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


_SIZE = re.compile(r"^\s*(\d+)\s*([kKmMgG]i?[bB]?|[bB])?\s*$")
_SIZE_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def setting(default: Any = dataclasses.MISSING, help: str = "", **meta: Any) -> Any:
    """A settings field with its help text. Mutable defaults are copied per instance."""
    metadata = {"help": help, **meta}
    if isinstance(default, list | dict):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Where(NamedTuple):
    path: str
    line: int | None


def _line(node: Any, key: str | None = None) -> int | None:
    if isinstance(node, LocDict):
        return node.key_line(key) if key is not None else node.line
    return getattr(node, "line", None) or None


def parse_size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    match = _SIZE.match(str(value))
    if match is None:
        raise ValueError(f"bad size {value!r} (use bytes or e.g. 64k, 8M)")
    unit = (match.group(2) or "").lower()[:1]
    return int(match.group(1)) * _SIZE_UNITS[unit]


def parse_address(value: Any) -> Address:
    if isinstance(value, int) and not isinstance(value, bool):
        host, port_text = "0.0.0.0", str(value)  # noqa: S104 - a bare port means every interface
    else:
        text = str(value).strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port_text = rest.removeprefix(":")
        else:
            host, sep, port_text = text.rpartition(":")
            if not sep:
                raise ValueError(f"bad address {value!r} (use host:port)")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"bad port in {value!r}")
    return Address(host or "0.0.0.0", int(port_text))  # noqa: S104


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def build(cls: type[T], data: Any, where: Where, section: str = "") -> T:
    """An instance of settings class ``cls`` from ``data`` (a mapping), or ConfigError."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"expected a mapping, got {type(data).__name__}",
            where.path,
            _line(data) or where.line,
            section or None,
        )
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key in data:
        if key not in names:
            close = difflib.get_close_matches(str(key), sorted(names), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(sorted(names))})"
            raise ConfigError(
                f"unknown setting {key!r}{hint}", where.path, _line(data, key), _join(section, str(key))
            )
    hints = _hints(cls)  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        name = _join(section, f.name)
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(
                    f"missing required setting {f.name!r}", where.path, _line(data) or where.line, name
                )
            continue
        line = _line(data, f.name) or where.line
        values[f.name] = convert(hints[f.name], data[f.name], Where(where.path, line), name)
    try:
        instance = cls(**values)
    except (TypeError, ValueError) as exc:
        raise ConfigError(str(exc), where.path, _line(data) or where.line, section or None) from None
    check = getattr(instance, "validate", None)
    if check is not None:
        try:
            check()
        except ValueError as exc:
            raise ConfigError(str(exc), where.path, _line(data) or where.line, section or None) from None
    return instance


def _join(section: str, name: str) -> str:
    return f"{section}.{name}" if section else name


def convert(hint: Any, value: Any, where: Where, name: str) -> Any:
    """Convert one YAML value to ``hint``."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return convert(options[0], value, where, name) if len(options) == 1 else value
    try:
        if hint is Any:
            return value
        if hint is Secret:
            return resolve_secret(value, where.path, where.line, name)
        if hint is Seconds:
            try:
                return Seconds(parse_duration(value))
            except RuleError as exc:
                raise ValueError(exc.reason) from None
        if hint is ByteSize:
            return ByteSize(parse_size(value))
        if hint is Address:
            return parse_address(value)
        if hint is bool:
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if hint is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"expected an integer, got {value!r}")
            return value
        if hint is float:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number, got {value!r}")
            return float(value)
        if hint is str:
            if isinstance(value, dict | list) or value is None:
                raise ValueError(f"expected text, got {type(value).__name__}")
            return str(value)
        if origin is list:
            (item_hint,) = get_args(hint)
            if not isinstance(value, list):
                value = [value] if isinstance(value, str) else value
            if not isinstance(value, list):
                raise ValueError(f"expected a list, got {type(value).__name__}")
            lines = value.item_lines if isinstance(value, LocList) else []
            return [
                convert(
                    item_hint,
                    item,
                    Where(where.path, lines[i] if i < len(lines) else where.line),
                    f"{name}[{i}]",
                )
                for i, item in enumerate(value)
            ]
        if origin is dict:
            if not isinstance(value, dict):
                raise ValueError(f"expected a mapping, got {type(value).__name__}")
            _, value_hint = get_args(hint)
            return {
                str(k): convert(
                    value_hint, v, Where(where.path, _line(value, str(k)) or where.line), f"{name}.{k}"
                )
                for k, v in value.items()
            }
        if dataclasses.is_dataclass(hint):
            return build(hint, value, where, name)  # type: ignore[arg-type]
    except ConfigError:
        raise
    except ValueError as exc:
        raise ConfigError(str(exc), where.path, where.line, name) from None
    raise ConfigError(f"unsupported setting type {hint!r}", where.path, where.line, name)
