"""Compile a YAML condition into a predicate ``Callable[[Event], bool]`` plus index hints.

Grammar (FORMAT.md documents it for rule writers)::

    condition := mapping            # every entry must hold (AND); {} matches everything
    entry     := all: [condition, ...] | any: [condition, ...] | not: condition
               | <field>: <scalar>        # equals
               | <field>: [v1, v2]        # in
               | <field>: {op: arg, ..., nocase: bool}   # every op must hold

Everything that can be done once happens here: field getters, lower-casing for
``nocase``, regex compilation and the literal gate in front of each regex, CIDR parsing.
Index hints say which values of ``action``/``service``/``kind`` an event must have to
possibly match, so the engine only offers an event to rules that can match it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Final

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect.fields import check_path, getter
from stackwatch.detect.locyaml import LocDict, LocList

try:  # Python's private regex parser gives the literal gate; absent -> no gate
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    sre_parse = None  # type: ignore[assignment]

Predicate = Callable[[Event], bool]
Hints = dict[str, frozenset[str]]

INDEX_FIELDS: Final = ("action", "service", "kind")
OPERATORS: Final = ("eq", "in", "prefix", "suffix", "contains", "regex", "cidr", "exists",
                    "gt", "gte", "lt", "lte", "nocase")
LOGICAL: Final = ("all", "any", "not")


def match_all(event: Event) -> bool:
    return True


@dataclass(frozen=True)
class Compiled:
    predicate: Predicate
    hints: Hints = field(default_factory=dict)  # dimension -> allowed values; absent = any


@dataclass(frozen=True)
class _Where:
    file: str
    line: int

    def error(self, message: str, line: int | None, field_name: str | None) -> RuleError:
        return RuleError(message, self.file, line or self.line, field_name)


def compile_condition(node: Any, file: str = "", line: int = 0) -> Compiled:
    """Compile a condition mapping; RuleError (file, line, field) on any mistake."""
    return _compile(node, _Where(file, line), line)


def _compile(node: Any, where: _Where, line: int) -> Compiled:
    if node is None:
        return Compiled(match_all)
    if not isinstance(node, dict):
        raise where.error(f"a condition must be a mapping, got {type(node).__name__}", line, "condition")
    parts: list[Compiled] = []
    for key, value in node.items():
        key_line = node.key_line(key) if isinstance(node, LocDict) else line
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise where.error(f"{key!r} needs a non-empty list of conditions", key_line, key)
            children = [_compile(item, where, _item_line(value, i, key_line)) for i, item in enumerate(value)]
            parts.append(_and(children) if key == "all" else _or(children))
        elif key == "not":
            parts.append(Compiled(_negate(_compile(value, where, key_line).predicate)))
        else:
            parts.append(_leaf(key, value, where, key_line))
    if not parts:
        return Compiled(match_all)
    return _and(parts)


def _negate(inner: Predicate) -> Predicate:
    return lambda event: not inner(event)


def _item_line(items: list[Any], index: int, default: int) -> int:
    return items.item_line(index) if isinstance(items, LocList) else default


def _and(parts: list[Compiled]) -> Compiled:
    if len(parts) == 1:
        return parts[0]
    hints: Hints = {}
    for part in parts:
        for dim, values in part.hints.items():
            hints[dim] = hints[dim] & values if dim in hints else values
    predicates = tuple(p.predicate for p in parts if p.predicate is not match_all)
    if not predicates:
        return Compiled(match_all, hints)
    if len(predicates) == 2:
        first, second = predicates
        return Compiled(lambda event: first(event) and second(event), hints)
    return Compiled(lambda event: all(p(event) for p in predicates), hints)


def _or(parts: list[Compiled]) -> Compiled:
    if len(parts) == 1:
        return parts[0]
    hints: Hints = {}
    for dim in INDEX_FIELDS:
        if all(dim in p.hints for p in parts):
            hints[dim] = frozenset().union(*(p.hints[dim] for p in parts))
    predicates = tuple(p.predicate for p in parts)
    return Compiled(lambda event: any(p(event) for p in predicates), hints)


def combine_all(parts: list[Compiled]) -> Compiled:
    """AND of compiled conditions (used by kinds that add their own conditions)."""
    return _and(parts) if parts else Compiled(match_all)


def combine_any(parts: list[Compiled]) -> Compiled:
    return _or(parts) if parts else Compiled(match_all)


# ---------------------------------------------------------------------------- leaves

Test = Callable[[Any], bool]


def _leaf(path: str, spec: Any, where: _Where, line: int) -> Compiled:
    check_path(path, where.file, line)
    get = getter(path)
    if isinstance(spec, dict):
        ops = dict(spec)
        nocase = ops.pop("nocase", False)
        if not isinstance(nocase, bool):
            raise where.error("nocase must be true or false", line, path)
        if not ops:
            raise where.error("no operator given", line, path)
        tests = []
        hints: Hints = {}
        for op, arg in ops.items():
            op_line = spec.key_line(op) if isinstance(spec, LocDict) else line
            if op not in OPERATORS:
                raise where.error(f"unknown operator {op!r} (known: {', '.join(OPERATORS)})", op_line, path)
            if op == "exists":
                if not isinstance(arg, bool):
                    raise where.error("exists must be true or false", op_line, path)
                tests.append(_exists(get, arg))
                continue
            test = _make_test(op, arg, nocase, where, op_line, path)
            tests.append(_over_value(get, test, nocase))
            if not nocase and path in INDEX_FIELDS and op in ("eq", "in"):
                values = arg if isinstance(arg, list) else [arg]
                if all(isinstance(v, str) for v in values):
                    hints[path] = frozenset(values)
        all_tests = tuple(tests)
        predicate = tests[0] if len(tests) == 1 else (lambda event: all(t(event) for t in all_tests))
        return Compiled(predicate, hints)
    if isinstance(spec, list):
        return _leaf(path, {"in": spec}, where, line)
    if spec is None:
        return Compiled(_exists(get, False))
    hints = {path: frozenset([spec])} if path in INDEX_FIELDS and isinstance(spec, str) else {}
    if isinstance(spec, str) and path in ("action", "service", "kind", "host", "outcome", "severity"):
        # The hottest case: a plain string field compared to a literal.
        return Compiled(_text_equals(get, spec), hints)
    return Compiled(_over_value(get, _make_test("eq", spec, False, where, line, path), False), hints)


def _text_equals(get: Callable[[Event], Any], text: str) -> Predicate:
    return lambda event: bool(get(event) == text)


def _exists(get: Callable[[Event], Any], want: bool) -> Predicate:
    return lambda event: (get(event) not in (None, "")) is want


def _over_value(get: Callable[[Event], Any], test: Test, nocase: bool) -> Predicate:
    """Apply ``test`` to the field value; a list value matches when any element does."""

    def predicate(event: Event) -> bool:
        value = get(event)
        if value is None:
            return False
        if isinstance(value, list | tuple):
            return any(item is not None and test(_norm(item, nocase)) for item in value)
        return test(_norm(value, nocase))

    return predicate


def _norm(value: Any, nocase: bool) -> Any:
    if nocase:
        return value.lower() if isinstance(value, str) else str(value).lower()
    return value


def _strings(op: str, arg: Any, nocase: bool, where: _Where, line: int, path: str) -> tuple[str, ...]:
    values = arg if isinstance(arg, list) else [arg]
    if not values or not all(isinstance(v, str | int | float) and not isinstance(v, bool) for v in values):
        raise where.error(f"{op} needs a string or a list of strings", line, path)
    return tuple(str(v).lower() if nocase else str(v) for v in values)


def _make_test(op: str, arg: Any, nocase: bool, where: _Where, line: int, path: str) -> Test:
    if op in ("eq", "in"):
        values = arg if isinstance(arg, list) else [arg]
        if op == "in" and not isinstance(arg, list):
            raise where.error("in needs a list", line, path)
        if any(isinstance(v, dict | list) for v in values):
            raise where.error(f"{op} compares with scalars only", line, path)
        if nocase:
            values = [str(v).lower() for v in values]
        exact = frozenset(v for v in values if v is not None)
        as_text = frozenset(str(v) for v in exact)

        all_text = all(isinstance(v, str) for v in exact)

        def equals(value: Any) -> bool:
            try:
                if value in exact:
                    return True
            except TypeError:  # unhashable value
                return False
            if isinstance(value, bool) or (all_text and isinstance(value, str)):
                return False
            # YAML 401 vs an attrs value "401" (or the reverse): compare as text.
            return str(value) in as_text

        return equals
    if op in ("prefix", "suffix", "contains"):
        needles = _strings(op, arg, nocase, where, line, path)
        if op == "prefix":
            return lambda value: isinstance(value, str) and value.startswith(needles)
        if op == "suffix":
            return lambda value: isinstance(value, str) and value.endswith(needles)
        if len(needles) == 1:
            needle = needles[0]
            return lambda value: isinstance(value, str) and needle in value
        return lambda value: isinstance(value, str) and any(n in value for n in needles)
    if op == "regex":
        return _regex_test(arg, nocase, where, line, path)
    if op == "cidr":
        return _cidr_test(arg, where, line, path)
    # gt / gte / lt / lte
    if isinstance(arg, bool) or not isinstance(arg, int | float):
        raise where.error(f"{op} needs a number", line, path)
    limit = float(arg)
    compare = {"gt": float.__gt__, "gte": float.__ge__, "lt": float.__lt__, "lte": float.__le__}[op]

    def numeric(value: Any) -> bool:
        if isinstance(value, bool):
            return False
        try:
            return compare(float(value), limit)
        except (TypeError, ValueError):
            return False

    return numeric


def required_literal(pattern: str, flags: int = 0) -> str:
    """The longest literal every match must contain ('' when there is none we can prove)."""
    if sre_parse is None:
        return ""
    try:
        parsed = sre_parse.parse(pattern, flags)
    except re.error:
        return ""
    best, run = "", []
    for op, arg in parsed:
        if op is sre_parse.LITERAL:
            run.append(chr(arg))
            continue
        if len(run) > len(best):
            best = "".join(run)
        run = []
    if len(run) > len(best):
        best = "".join(run)
    return best


def _searcher(compiled: re.Pattern[str], literal: str) -> Test:
    search = compiled.search
    if len(literal) >= 2:  # cheap substring test before the regex engine
        return lambda value: isinstance(value, str) and literal in value and search(value) is not None
    return lambda value: isinstance(value, str) and search(value) is not None


def _regex_test(arg: Any, nocase: bool, where: _Where, line: int, path: str) -> Test:
    patterns = arg if isinstance(arg, list) else [arg]
    tests: list[Test] = []
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise where.error("regex needs a string or a list of strings", line, path)
        flags = re.IGNORECASE if nocase else 0
        try:
            compiled = re.compile(pattern, flags)
        except re.error as exc:
            raise where.error(f"bad regex {pattern!r}: {exc}", line, path) from None
        literal = required_literal(pattern, flags)
        if nocase:
            literal = literal.lower()
        tests.append(_searcher(compiled, literal))
    if len(tests) == 1:
        return tests[0]
    return lambda value: any(t(value) for t in tests)


@lru_cache(maxsize=65536)
def parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _cidr_test(arg: Any, where: _Where, line: int, path: str) -> Test:
    specs = arg if isinstance(arg, list) else [arg]
    networks = []
    for spec in specs:
        try:
            networks.append(ipaddress.ip_network(str(spec), strict=False))
        except ValueError as exc:
            raise where.error(f"bad CIDR {spec!r}: {exc}", line, path) from None
    nets = tuple(networks)

    def in_networks(value: Any) -> bool:
        if not isinstance(value, str):
            return False
        address = parse_ip(value)
        return address is not None and any(
            address.version == net.version and address in net for net in nets)

    return in_networks
