"""Loading rule files: YAML (one rule per file, or a list of rules) validated field by
field with ``file:line: field: reason`` errors, and Sigma files handed to
``stackwatch.detect.sigma``.

``load_rules(paths)`` never stops at the first broken file: it returns a ``RuleSet``
with the good rules and one error entry per problem (a broken rule, a duplicate id, a
Sigma file that could not be used), so callers can report everything at once.
"""

from __future__ import annotations

import difflib
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Final

from stackwatch.core.alert import ALERT_SEVERITIES, CATEGORIES
from stackwatch.core.errors import LocatedError, RuleError
from stackwatch.detect.conditions import Compiled, combine_all, compile_condition
from stackwatch.detect.explain import parse_explained_by
from stackwatch.detect.fields import check_path
from stackwatch.detect.kinds import MODULES
from stackwatch.detect.model import (
    DEFAULT_MAX_KEYS,
    DEFAULT_REALERT,
    ENTITY_FIELDS,
    KINDS,
    Rule,
    parse_duration,
)
from stackwatch.detect.render import compile_summary
from stackwatch.detect.yaml_locations import LocDict, LocList, load_yaml

COMMON_FIELDS: Final = ("id", "title", "category", "severity", "description", "references", "kind",
                        "condition", "group_by", "window", "summary", "entities", "details", "realert",
                        "enabled", "tags", "outside_maintenance", "escalate", "explained_by", "max_keys",
                        "tests")
WINDOWED: Final = frozenset({"threshold", "cardinality", "sequence", "absence", "level_drop", "spike"})
RULE_SUFFIXES: Final = (".yaml", ".yml")
_SIGMA_HINT = re.compile(r"^logsource\s*:", re.MULTILINE)
_SIGMA_HINT2 = re.compile(r"^detection\s*:", re.MULTILINE)


@dataclass
class RuleSet:
    """Rules loaded from files, with every problem found on the way."""

    rules: list[Rule] = field(default_factory=list)
    errors: list[LocatedError] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Rule]:
        return iter(self.rules)

    def __len__(self) -> int:
        return len(self.rules)

    def extend(self, other: RuleSet) -> None:
        _merge(self, other.rules, other.errors)
        self.files.extend(other.files)


def _merge(target: RuleSet, rules: Iterable[Rule], errors: Iterable[LocatedError]) -> None:
    """Add rules, turning a second use of an id into an error entry."""
    known = {rule.id: rule for rule in target.rules}
    target.errors.extend(errors)
    for rule in rules:
        if rule.id in known:
            first = known[rule.id].where
            target.errors.append(RuleError(f"duplicate rule id {rule.id} (first defined at {first})",
                                           rule.source or None, rule.line or None, "id"))
            continue
        known[rule.id] = rule
        target.rules.append(rule)


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """Rule files under ``paths`` (files as given, folders recursively, sorted)."""
    out: list[Path] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            out.extend(sorted(p for p in path.rglob("*") if p.suffix in RULE_SUFFIXES and p.is_file()))
        else:
            out.append(path)
    return out


def load_rules(paths: Iterable[str | Path]) -> RuleSet:
    """Load every rule file under ``paths``; problems become ``RuleSet.errors`` entries."""
    result = RuleSet()
    for path in rule_files(paths):
        result.files.append(str(path))
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            result.errors.append(RuleError(f"cannot read: {exc}", str(path)))
            continue
        rules, errors = load_text(text, str(path), fs_path=path)
        _merge(result, rules, errors)
    return result


def builtin_rules() -> RuleSet:
    """The built-in packs: every *.yaml under stackwatch/rules/ (package data)."""
    result = RuleSet()
    root = resources.files("stackwatch").joinpath("rules")
    if not root.is_dir():
        return result
    found: list[tuple[str, Any]] = []

    def walk(node: Any, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}/{child.name}"
            if child.is_dir():
                walk(child, name)
            elif child.name.endswith(RULE_SUFFIXES):
                found.append((name, child))

    walk(root, "rules")
    for name, child in sorted(found, key=lambda item: item[0]):
        result.files.append(name)
        fs_path = Path(str(child)) if Path(str(child)).is_file() else None
        rules, errors = load_text(child.read_text(encoding="utf-8"), name, fs_path=fs_path)
        _merge(result, rules, errors)
    return result


def load_text(text: str, source: str, fs_path: Path | None = None) -> tuple[list[Rule], list[LocatedError]]:
    """Rules of one file's text; never raises for a bad rule (returns the errors)."""
    if _SIGMA_HINT.search(text) and _SIGMA_HINT2.search(text):
        return _load_sigma(source, fs_path)
    try:
        data = load_yaml(text, source)
    except RuleError as exc:
        return [], [exc]
    if data is None:
        return [], [RuleError("empty rule file", source, 1)]
    items = data if isinstance(data, list) else [data]
    rules: list[Rule] = []
    errors: list[LocatedError] = []
    for index, item in enumerate(items):
        try:
            if not isinstance(item, LocDict):
                line = data.item_line(index) if isinstance(data, LocList) else 1
                raise RuleError("a rule must be a mapping", source, line)
            rules.append(build_rule(item, source))
        except RuleError as exc:
            errors.append(exc)
    return rules, errors


def _load_sigma(source: str, fs_path: Path | None) -> tuple[list[Rule], list[LocatedError]]:
    try:
        from stackwatch.detect import sigma
    except Exception as exc:  # never skip silently: the file is reported with the reason
        return [], [RuleError(f"Sigma rule, but Sigma support is unavailable: {type(exc).__name__}: {exc}",
                              source)]
    try:
        return list(sigma.load_sigma_file(fs_path or Path(source))), []
    except LocatedError as exc:
        return [], [exc]
    except Exception as exc:
        return [], [RuleError(f"Sigma rule could not be loaded: {type(exc).__name__}: {exc}", source)]


# ---------------------------------------------------------------------------- one rule


def _err(doc: LocDict, key: str, message: str) -> RuleError:
    return RuleError(message, doc.path or None, doc.key_line(key), key)


def _text(doc: LocDict, key: str, *, required: bool = False, default: str = "") -> str:
    if key not in doc:
        if required:
            raise RuleError(f"{key!r} is required", doc.path or None, doc.line, key)
        return default
    value = doc[key]
    if not isinstance(value, str) or (required and not value.strip()):
        raise _err(doc, key, "must be a non-empty string" if required else "must be a string")
    return value


def _strings(doc: LocDict, key: str) -> tuple[str, ...]:
    value = doc.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _err(doc, key, "must be a list of strings")
    return tuple(value)


def _bool(doc: LocDict, key: str, default: bool) -> bool:
    value = doc.get(key, default)
    if not isinstance(value, bool):
        raise _err(doc, key, "must be true or false")
    return value


def build_rule(doc: LocDict, source: str) -> Rule:
    """Validate one rule mapping and build the Rule (RuleError with file:line: field)."""
    doc.path = source
    kind = doc.get("kind", "match")
    if kind not in KINDS:
        raise _err(doc, "kind", f"unknown kind {kind!r} (known: {', '.join(KINDS)})")
    module = MODULES[kind]
    allowed = COMMON_FIELDS + tuple(module.FIELDS)
    for key in doc:
        if key not in allowed:
            others = [f for m in MODULES.values() for f in m.FIELDS if f not in allowed]
            hint = difflib.get_close_matches(key, list(allowed) + others, n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            if hint and hint[0] in others and hint[0] == key:
                suggestion = f" (only for other kinds than {kind!r})"
            raise _err(doc, key, f"unknown field {key!r}{suggestion}")
    if "id" not in doc:
        raise RuleError("'id' is required (a UUID; generate one with uuidgen)", source, doc.line, "id")
    rule_id = str(doc["id"])
    try:
        uuid.UUID(rule_id)
    except ValueError:
        raise _err(doc, "id", f"id must be a UUID, got {rule_id!r}") from None
    title = _text(doc, "title", required=True)
    category = _text(doc, "category", required=True)
    if category not in CATEGORIES:
        raise _err(doc, "category", f"unknown category {category!r} (known: {', '.join(CATEGORIES)})")
    severity = _text(doc, "severity", required=True)
    if severity not in ALERT_SEVERITIES:
        raise _err(doc, "severity", f"must be one of {', '.join(ALERT_SEVERITIES)}")
    compiled = compile_condition(doc.get("condition"), source, doc.key_line("condition"))
    params = module.parse_params(doc, source)
    extra = getattr(params, "condition", None)
    if isinstance(extra, Compiled):
        compiled = combine_all([compiled, extra])
    group_by = _strings(doc, "group_by")
    for path in group_by:
        check_path(path, source, doc.key_line("group_by"), "group_by")
    window = (parse_duration(doc["window"], source, doc.key_line("window"), "window")
              if "window" in doc else 0.0)
    if kind in WINDOWED and window <= 0:
        raise RuleError(f"kind {kind!r} needs a window (e.g. window: 5m)", source,
                        doc.key_line("window") if "window" in doc else doc.line, "window")
    realert = (parse_duration(doc["realert"], source, doc.key_line("realert"), "realert")
               if "realert" in doc else DEFAULT_REALERT)
    summary = _text(doc, "summary")
    compile_summary(summary, {"threshold": getattr(params, "threshold", None), "window": window,
                              "title": title}, source, doc.key_line("summary"))
    entities = doc.get("entities")
    if entities is not None:
        if not isinstance(entities, dict):
            raise _err(doc, "entities", "must be a mapping alert-field: event.field")
        for name, path in entities.items():
            if name not in ENTITY_FIELDS:
                raise _err(doc, "entities", f"unknown entity {name!r} (known: {', '.join(ENTITY_FIELDS)})")
            if path is not None:
                check_path(path, source, doc.key_line("entities"), f"entities.{name}")
    details = doc.get("details")
    if details is not None:
        if not isinstance(details, dict) or not all(isinstance(p, str) for p in details.values()):
            raise _err(doc, "details", "must be a mapping detail-name: event.field")
        for name, path in details.items():
            check_path(path, source, doc.key_line("details"), f"details.{name}")
    max_keys = doc.get("max_keys", DEFAULT_MAX_KEYS)
    if isinstance(max_keys, bool) or not isinstance(max_keys, int) or max_keys < 1:
        raise _err(doc, "max_keys", "must be an integer >= 1")
    tests = doc.get("tests")
    if tests is not None and not (isinstance(tests, dict) and set(tests) <= {"fire", "quiet"}
                                  and all(isinstance(v, list) for v in tests.values())):
        raise _err(doc, "tests", "must be a mapping with 'fire' and 'quiet' lists of cases")
    try:
        return Rule(
            id=rule_id, title=title, category=category, severity=severity, condition=compiled.predicate,
            kind=kind, description=_text(doc, "description"), references=_strings(doc, "references"),
            params=params, group_by=group_by, window=window, summary=summary,
            entities=dict(entities) if entities is not None else None, realert=realert,
            details=dict(details) if details is not None else None,
            enabled=_bool(doc, "enabled", True), tags=_strings(doc, "tags"), index=compiled.hints,
            outside_maintenance=_bool(doc, "outside_maintenance", False),
            escalate=_escalate(doc, source), explained_by=parse_explained_by(doc, source),
            max_keys=max_keys, source=source, line=doc.line, tests=tests,
        )
    except RuleError as exc:  # Rule's own checks (id not a UUID, kind needs a window...)
        if exc.field is not None and exc.field in doc:
            raise _err(doc, exc.field, exc.reason) from None
        raise


def _escalate(doc: LocDict, source: str) -> tuple[tuple[Any, str], ...]:
    items = doc.get("escalate", [])
    if not isinstance(items, list):
        raise _err(doc, "escalate", "must be a list of {condition, severity}")
    out = []
    for index, item in enumerate(items):
        line = items.item_line(index) if isinstance(items, LocList) else doc.key_line("escalate")
        if not isinstance(item, dict) or set(item) != {"condition", "severity"}:
            raise RuleError("an escalate entry is {condition: ..., severity: ...}", source, line, "escalate")
        if item["severity"] not in ALERT_SEVERITIES:
            raise RuleError(f"severity must be one of {', '.join(ALERT_SEVERITIES)}", source, line,
                            "escalate")
        out.append((compile_condition(item["condition"], source, line).predicate, item["severity"]))
    return tuple(out)
