"""Loading ``stackwatch serve``'s configuration file: YAML -> ``Settings``, every problem
reported as ``file:line: field: reason``, secrets resolved from their references."""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stackwatch.config.schema import Where, build
from stackwatch.config.settings import (
    ClusterSettings,
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
from stackwatch.detect.yaml_locations import LocDict, LocList, load_yaml

SECTIONS = {
    "hostname": "this monitor's host name in its own events and alerts (default: the system's)",
    "state_dir": "folder for saved file offsets and undeliverable alerts (dead letters)",
    "store": "where events and alerts are kept",
    "rules": "which detection rules run",
    "maintenance": "maintenance windows (see detect/schedule.py): host_groups and windows",
    "expected_sources": "sources (host + service) watched for silence from the start",
    "sources": "where records come from: syslog_udp, syslog_tcp, relp, file, amqp",
    "sinks": "where alerts go: webhook, smtp, syslog, file",
    "routing": "which alerts go to which sinks (default: every alert to every sink)",
    "throttle": "limits on repeated notifications",
    "listen": "the self-monitoring HTTP listener",
    "limits": "queues, batching, timers and the pipeline's self-monitoring",
    "cluster": "the collector and analyzer roles: broker, partitions, batches (docs/cluster.md)",
    "web": "the web UI and API (owned by stackwatch.api)",
    "auth": "logins besides the local users: keystone (owned by stackwatch.api)",
    "respond": "automatic responses (owned by stackwatch.respond)",
}

# Sections owned by other modules: handed their raw mapping when the module exists.
EXTERNAL_SECTIONS = {
    "web": "stackwatch.api.settings:WebSettings",
    "auth": "stackwatch.api.keystone_settings:AuthSettings",
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
    """Validate ``text``; every problem found is reported (ConfigErrors when more than one),
    not only the first: each section, and each item of a list, is checked on its own."""
    try:
        data = load_yaml(text, file)
    except RuleError as exc:  # yaml_locations reports YAML problems as RuleError
        raise ConfigError(exc.reason, exc.path, exc.line, exc.field) from None
    if data is None:
        data = LocDict()
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a mapping of sections", file, 1)
    problems: list[ConfigError] = []
    for key in data:
        if key not in SECTIONS:
            close = difflib.get_close_matches(str(key), list(SECTIONS), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (sections: {', '.join(SECTIONS)})"
            problems.append(ConfigError(f"unknown section {key!r}{hint}", file, _line(data, key), str(key)))

    def where(key: str) -> Where:
        return Where(file, _line(data, key))

    def checked(build_it: Any, default: Any = None) -> Any:
        """``build_it()``, or ``default`` with its ConfigError kept for the report."""
        try:
            return build_it()
        except ConfigErrors as exc:
            problems.extend(exc.problems)
        except ConfigError as exc:
            problems.append(exc)
        return default

    values: dict[str, Any] = {"path": file}
    for key in ("hostname", "state_dir"):
        if key in data:
            if not isinstance(data[key], str) or not data[key]:
                problems.append(ConfigError("expected non-empty text", file, _line(data, key), key))
            else:
                values[key] = data[key]
    for key, cls in (
        ("store", StoreSettings),
        ("rules", RulesSettings),
        ("throttle", ThrottleSettings),
        ("listen", ListenSettings),
        ("limits", LimitsSettings),
        ("cluster", ClusterSettings),
    ):
        if key in data:
            built = checked(lambda key=key, cls=cls: build(cls, data[key], where(key), key))
            if built is not None:
                values[key] = built
    if "maintenance" in data:
        values["maintenance"] = checked(lambda: _maintenance(data, file))
        if values["maintenance"] is None:
            del values["maintenance"]
    values["expected_sources"] = [
        built for built in (
            checked(lambda i=i, item=item, line=line: build(
                ExpectedSource, item, Where(file, line), f"expected_sources[{i}]"))
            for i, item, line in checked(lambda: _items(data, "expected_sources", file), [])
        ) if built is not None
    ]
    values["sources"] = _plugins(data, "sources", file, "stackwatch.sources.registry", "SOURCES", checked)
    values["sinks"] = _plugins(data, "sinks", file, "stackwatch.alerts.registry", "SINKS", checked)
    routes = [
        (i, checked(lambda i=i, item=item, line=line: build(
            RouteSettings, item, Where(file, line), f"routing[{i}]")))
        for i, item, line in checked(lambda: _items(data, "routing", file), [])
    ]
    values["routing"] = [route for _, route in routes if route is not None]
    sink_names = {sink.name for sink in values["sinks"]}
    for i, route in routes:
        for name in route.sinks if route is not None else ():
            if name not in sink_names:
                problems.append(ConfigError(
                    f"route names unknown sink {name!r} (sinks: {', '.join(sorted(sink_names))})",
                    file,
                    _item_line(data, "routing", i),
                    f"routing[{i}].sinks",
                ))
    for key, reference in EXTERNAL_SECTIONS.items():
        if key in data:
            owned = checked(lambda key=key, reference=reference: _external(
                reference, data[key], Where(file, _line(data, key)), key), _MISSING)
            if owned is not _MISSING:
                values[key] = owned
    if problems:
        raise problems[0] if len(problems) == 1 else ConfigErrors(problems)
    return Settings(**values)


_MISSING = object()


class ConfigErrors(ConfigError):
    """Several problems in one configuration file; ``problems`` lists them in file order."""

    def __init__(self, problems: list[ConfigError]) -> None:
        self.problems = sorted(problems, key=lambda p: (p.line or 0))
        first = self.problems[0]
        super().__init__(first.reason, first.path, first.line, first.field)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def _maintenance(data: Any, file: str) -> Any:
    from stackwatch.detect.schedule import MaintenanceSchedule

    try:
        return MaintenanceSchedule.from_config(data["maintenance"], file)
    except ConfigError as exc:
        raise ConfigError(exc.reason, file, exc.line or _line(data, "maintenance"), "maintenance") from None


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


def _plugins(data: Any, key: str, file: str, registry_module: str, table: str,
             checked: Callable[..., Any]) -> list[Any]:
    """Source or sink entries, each checked on its own (``checked`` keeps the problems)."""
    registry = importlib.import_module(registry_module)
    names: set[str] = set()
    out: list[Any] = []
    for i, item, line in checked(lambda: _items(data, key, file), []):
        settings = checked(lambda i=i, item=item, line=line: _plugin(registry, table, key, i, item, line,
                                                                      file, names))
        if settings is not None:
            out.append(settings)
    return out


def _plugin(registry: Any, table: str, key: str, i: int, item: Any, line: int | None, file: str,
            names: set[str]) -> Any:
    """One source or sink entry: it names its ``type``; that type's Settings validates the rest."""
    types: Mapping[str, str] = getattr(registry, table)  # a core.registry.Registry
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
        raise ConfigError(  # the registry's error wraps the import's: name that one, as before
            f"{key[:-1]} type {kind!r} cannot be loaded: {exc.__cause__ or exc}", file, line, field
        ) from None
    settings = build(settings_cls, item, Where(file, line), field)
    if not settings.name:  # the type is the default name
        settings = dataclasses.replace(settings, name=kind)
    if settings.name in names:
        raise ConfigError(f"duplicate {key[:-1]} name {settings.name!r}", file, line, f"{field}.name")
    names.add(settings.name)
    return settings


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
