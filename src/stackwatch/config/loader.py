"""Loading ``stackwatch serve``'s configuration file: YAML -> ``Settings``, every problem
reported as ``file:line: field: reason``, secrets resolved from their references."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from pathlib import Path
from typing import Any

from stackwatch.config.schema import Where, build
from stackwatch.config.settings import (
    ExpectedSource,
    LimitsSettings,
    ListenSettings,
    RouteSettings,
    RulesSettings,
    Settings,
    StoreSettings,
    ThrottleSettings,
)
from stackwatch.core.errors import ConfigError, RuleError
from stackwatch.detect.locyaml import LocDict, LocList, load_yaml

SECTIONS = {
    "hostname": "this monitor's host name in its own events and alerts (default: the system's)",
    "state_dir": "folder for saved file offsets and undeliverable alerts (dead letters)",
    "store": "where events and alerts are kept",
    "rules": "which detection rules run",
    "maintenance": "maintenance windows (see detect/schedule.py): host_groups and windows",
    "expected_sources": "sources (host + service) watched for silence from the start",
    "sources": "where records come from: syslog_udp, syslog_tcp, file, amqp",
    "sinks": "where alerts go: webhook, smtp, syslog, file",
    "routing": "which alerts go to which sinks (default: every alert to every sink)",
    "throttle": "limits on repeated notifications",
    "listen": "the self-monitoring HTTP listener",
    "limits": "queues, batching, timers and the pipeline's self-monitoring",
    "web": "the web UI and API (owned by stackwatch.api)",
    "respond": "automatic responses (owned by stackwatch.respond)",
}

# Sections owned by other modules: handed their raw mapping when the module exists.
EXTERNAL_SECTIONS = {
    "web": "stackwatch.api.settings:WebSettings",
    "respond": "stackwatch.respond.policy:ResponsePolicy",
}


def load_config(path: str | Path) -> Settings:
    """Read and validate the configuration file at ``path``."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file) from None
    return parse_config(text, file)


def parse_config(text: str, file: str = "<config>") -> Settings:
    try:
        data = load_yaml(text, file)
    except RuleError as exc:  # locyaml reports YAML problems as RuleError
        raise ConfigError(exc.reason, exc.path, exc.line, exc.field) from None
    if data is None:
        data = LocDict()
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping of sections", file, 1)
    for key in data:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), list(SECTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (sections: {', '.join(SECTIONS)})"
            raise ConfigError(f"unknown section {key!r}{hint}", file, _line(data, key), str(key))

    def where(key: str) -> Where:
        return Where(file, _line(data, key))

    values: dict[str, Any] = {"path": file}
    for key in ("hostname", "state_dir"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                raise ConfigError("expected non-empty text", file, _line(data, key), key)
            values[key] = data[key]
    for key, cls in (
        ("store", StoreSettings),
        ("rules", RulesSettings),
        ("throttle", ThrottleSettings),
        ("listen", ListenSettings),
        ("limits", LimitsSettings),
    ):
        if key in data:
            values[key] = build(cls, data[key], where(key), key)
    if "maintenance" in data:
        from stackwatch.detect.schedule import MaintenanceSchedule

        try:
            values["maintenance"] = MaintenanceSchedule.from_config(data["maintenance"], file)
        except ConfigError as exc:
            raise ConfigError(
                exc.reason, file, exc.line or _line(data, "maintenance"), "maintenance"
            ) from None
    values["expected_sources"] = [
        build(ExpectedSource, item, Where(file, line), f"expected_sources[{i}]")
        for i, item, line in _items(data, "expected_sources", file)
    ]
    values["sources"] = _plugins(data, "sources", file, "stackwatch.sources.registry", "SOURCES")
    values["sinks"] = _plugins(data, "sinks", file, "stackwatch.alerts.registry", "SINKS")
    values["routing"] = [
        build(RouteSettings, item, Where(file, line), f"routing[{i}]")
        for i, item, line in _items(data, "routing", file)
    ]
    sink_names = {sink.name for sink in values["sinks"]}
    for i, route in enumerate(values["routing"]):
        for name in route.sinks:
            if name not in sink_names:
                raise ConfigError(
                    f"route names unknown sink {name!r} (sinks: {', '.join(sorted(sink_names))})",
                    file,
                    _item_line(data, "routing", i),
                    f"routing[{i}].sinks",
                )
    for key, reference in EXTERNAL_SECTIONS.items():
        if key in data:
            values[key] = _external(reference, data[key], Where(file, _line(data, key)), key)
    return Settings(**values)


def _line(node: Any, key: str) -> int | None:
    return node.key_line(key) if isinstance(node, LocDict) else None


def _item_line(data: Any, key: str, index: int) -> int | None:
    items = data.get(key)
    return items.item_line(index) if isinstance(items, LocList) else _line(data, key)


def _items(data: Any, key: str, file: str) -> list[tuple[int, Any, int | None]]:
    items = data.get(key)
    if items is None:
        return []
    if not isinstance(items, list):
        raise ConfigError("expected a list", file, _line(data, key), key)
    return [(i, item, _item_line(data, key, i)) for i, item in enumerate(items)]


def _plugins(data: Any, key: str, file: str, registry_module: str, table: str) -> list[Any]:
    """Source or sink entries: each names its ``type``; that type's Settings validates the rest."""
    registry = importlib.import_module(registry_module)
    types: dict[str, str] = getattr(registry, table)
    out: list[Any] = []
    names: set[str] = set()
    for i, item, line in _items(data, key, file):
        field = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError("expected a mapping with a `type`", file, line, field)
        kind = item.get("type")
        if kind not in types:
            close = difflib.get_close_matches(str(kind), list(types), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown {key[:-1]} type {kind!r}{hint} (known: {', '.join(types)})",
                file,
                _line(item, "type") or line,
                f"{field}.type",
            )
        try:
            settings_cls = registry.settings_class(kind)
        except Exception as exc:  # a plugin that fails to import is reported, not a crash
            raise ConfigError(
                f"{key[:-1]} type {kind!r} cannot be loaded: {exc}", file, line, field
            ) from None
        settings = build(settings_cls, item, Where(file, line), field)
        if not settings.name:  # the type is the default name
            settings = dataclasses.replace(settings, name=kind)
        if settings.name in names:
            raise ConfigError(f"duplicate {key[:-1]} name {settings.name!r}", file, line, f"{field}.name")
        names.add(settings.name)
        out.append(settings)
    return out


def _external(reference: str, raw: Any, where: Where, key: str) -> Any:
    """Hand a section to the module that owns it; keep the raw mapping when it is absent."""
    module_name, _, attribute = reference.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return raw  # that part of stackwatch (or its optional dependency) is not installed
    owner = getattr(module, attribute)
    try:
        return owner.from_mapping(raw, where.path)
    except ConfigError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise ConfigError(str(exc), where.path, where.line, key) from None
