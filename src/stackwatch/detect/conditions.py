"""Compile a YAML condition into a predicate ``Callable[[Event], bool]`` plus index hints.

Grammar (FORMAT.md documents it for rule writers)::

    condition := mapping            # every entry must hold (AND); {} matches everything
    entry     := all: [condition, ...] | any: [condition, ...] | not: condition
               | <field>: <scalar>        # equals
               | <field>: [v1, v2]        # in
               | <field>: {op: arg, ..., nocase: bool}   # every op must hold

Everything that can be done once happens here: field access, lower-casing for
``nocase``, regex compilation and the literal gate in front of each regex, CIDR parsing.
Index hints say which values of ``action``/``service``/``kind``/``outcome`` an event must have to
possibly match, so the engine only offers an event to rules that can match it.

Speed: a condition is first built as a small tree (``_Node``), then turned into ONE
flat Python function (``codegen.py``), compiled once per rule: ``e.service == c0 and
e.action in c1 and e.initiator.source_ip not in c2``, cheapest tests first, no nested
generators. Each test keeps a reference closure with the documented semantics (list
values, numbers vs text, ``nocase``); the generated code takes a fast path only when the
value is a plain ``str`` and calls that closure otherwise, so results are identical.
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
from stackwatch.detect.codegen import And, Leaf, Node, Not, Op, Or, generate, interpret
from stackwatch.detect.fields import check_path, getter
from stackwatch.detect.yaml_locations import LocDict, LocList

try:  # Python's private regex parser gives the literal gate; absent -> no gate
    import re._parser as sre_parse
except ImportError:  # pragma: no cover
    sre_parse = None  # type: ignore[assignment]

Predicate = Callable[[Event], bool]
Hints = dict[str, frozenset[str]]

INDEX_FIELDS: Final = ("action", "service", "kind", "outcome")
OPERATORS: Final = ("eq", "in", "prefix", "suffix", "contains", "regex", "cidr", "exists",
                    "gt", "gte", "lt", "lte", "nocase")
LOGICAL: Final = ("all", "any", "not")
HOT_FIELDS: Final = ("action", "service", "kind", "host", "outcome", "severity")
"""Plain string fields compared with ``==`` directly (the hottest tests)."""


def match_all(event: Event) -> bool:
    return True


@dataclass(frozen=True)
class Compiled:
    predicate: Predicate
    hints: Hints = field(default_factory=dict)  # dimension -> allowed values; absent = any
    node: Node | None = field(default=None, compare=False, repr=False)  # the tree (None: opaque)


@dataclass(frozen=True)
class _Where:
    file: str
    line: int

    def error(self, message: str, line: int | None, field_name: str | None) -> RuleError:
        return RuleError(message, self.file, line or self.line, field_name)


def compile_condition(node: Any, file: str = "", line: int = 0) -> Compiled:
    """Compile a condition mapping; RuleError (file, line, field) on any mistake."""
    tree, hints = _compile(node, _Where(file, line), line)
    return _finish(tree, hints, f"{file}:{line}" if file else "<condition>")


def _finish(tree: Node, hints: Hints, where: str) -> Compiled:
    if isinstance(tree, And) and not tree.parts:
        return Compiled(match_all, hints, tree)
    return Compiled(generate(tree, where), hints, tree)


def reference_predicate(compiled: Compiled) -> Predicate:
    """The same condition evaluated by the tree's reference closures (no generated code):
    what the generated predicate must agree with (tests compare the two)."""
    return interpret(compiled.node) if compiled.node is not None else compiled.predicate


def _compile(node: Any, where: _Where, line: int) -> tuple[Node, Hints]:
    if node is None:
        return And(()), {}
    if not isinstance(node, dict):
        raise where.error(f"a condition must be a mapping, got {type(node).__name__}", line, "condition")
    parts: list[tuple[Node, Hints]] = []
    for key, value in node.items():
        key_line = node.key_line(key) if isinstance(node, LocDict) else line
        if key in ("all", "any"):
            if not isinstance(value, list) or not value:
                raise where.error(f"{key!r} needs a non-empty list of conditions", key_line, key)
            children = [_compile(item, where, _item_line(value, i, key_line)) for i, item in enumerate(value)]
            parts.append(_and(children) if key == "all" else _or(children))
        elif key == "not":
            inner, _ = _compile(value, where, key_line)
            parts.append((Not(inner), {}))
        else:
            parts.append(_leaf(key, value, where, key_line))
    return _and(parts)


def _item_line(items: list[Any], index: int, default: int) -> int:
    return items.item_line(index) if isinstance(items, LocList) else default


def _and(parts: list[tuple[Node, Hints]]) -> tuple[Node, Hints]:
    hints: Hints = {}
    for _, part_hints in parts:
        for dim, values in part_hints.items():
            hints[dim] = hints[dim] & values if dim in hints else values
    nodes: list[Node] = []
    for part, _ in parts:  # flatten: AND of ANDs is one AND ({} is an empty AND: always true)
        nodes.extend(part.parts if isinstance(part, And) else (part,))
    return (nodes[0] if len(nodes) == 1 else And(tuple(nodes))), hints


def _or(parts: list[tuple[Node, Hints]]) -> tuple[Node, Hints]:
    if len(parts) == 1:
        return parts[0]
    hints: Hints = {}
    for dim in INDEX_FIELDS:
        if all(dim in h for _, h in parts):
            hints[dim] = frozenset().union(*(h[dim] for _, h in parts))
    nodes: list[Node] = []
    for part, _ in parts:
        if isinstance(part, And) and not part.parts:  # one branch always true: the OR is too
            return part, hints
        nodes.extend(part.parts if isinstance(part, Or) else (part,))
    return Or(tuple(nodes)), hints


def _opaque(compiled: Compiled) -> tuple[Node, Hints]:
    if compiled.node is not None:
        return compiled.node, compiled.hints
    return Leaf("", (Op("call", compiled.predicate, cost=20),)), compiled.hints


def combine_all(parts: list[Compiled]) -> Compiled:
    """AND of compiled conditions (used by kinds that add their own conditions)."""
    tree, hints = _and([_opaque(p) for p in parts])
    return _finish(tree, hints, "<condition>")


def combine_any(parts: list[Compiled]) -> Compiled:
    if not parts:
        return Compiled(match_all, {}, And(()))
    tree, hints = _or([_opaque(p) for p in parts])
    return _finish(tree, hints, "<condition>")


# ---------------------------------------------------------------------------- leaves

Test = Callable[[Any], bool]


def _leaf(path: str, spec: Any, where: _Where, line: int) -> tuple[Node, Hints]:
    check_path(path, where.file, line)
    get = getter(path)
    if isinstance(spec, dict):
        ops_spec = dict(spec)
        nocase = ops_spec.pop("nocase", False)
        if not isinstance(nocase, bool):
            raise where.error("nocase must be true or false", line, path)
        if not ops_spec:
            raise where.error("no operator given", line, path)
        ops: list[Op] = []
        hints: Hints = {}
        for op, arg in ops_spec.items():
            op_line = spec.key_line(op) if isinstance(spec, LocDict) else line
            if op not in OPERATORS:
                raise where.error(f"unknown operator {op!r} (known: {', '.join(OPERATORS)})", op_line, path)
            if op == "exists":
                if not isinstance(arg, bool):
                    raise where.error("exists must be true or false", op_line, path)
                ops.append(Op("exists", _exists(get, arg), cost=2, arg=arg))
                continue
            test = _make_test(op, arg, nocase, where, op_line, path)
            ops.append(_op(op, arg, nocase, test, get))
            if not nocase and path in INDEX_FIELDS and op in ("eq", "in"):
                values = arg if isinstance(arg, list) else [arg]
                if all(isinstance(v, str) for v in values):
                    # several operators on one field all hold: the values they allow together
                    hints[path] = hints[path] & frozenset(values) if path in hints else frozenset(values)
                    ops[-1] = ops[-1].hinting(path, frozenset(values))
        return Leaf(path, tuple(ops)), hints
    if isinstance(spec, list):
        return _leaf(path, {"in": spec}, where, line)
    if spec is None:
        return Leaf(path, (Op("exists", _exists(get, False), cost=2, arg=False),)), {}
    hints = {path: frozenset([spec])} if path in INDEX_FIELDS and isinstance(spec, str) else {}
    if isinstance(spec, str) and path in HOT_FIELDS:
        # The hottest case: a plain string field compared to a literal.
        op = Op("text_eq", _text_equals(get, spec), cost=1, arg=spec)
        if hints:
            op = op.hinting(path, hints[path])
        return Leaf(path, (op,)), hints
    test = _make_test("eq", spec, False, where, line, path)
    op = _op("eq", spec, False, test, get)
    if hints:
        op = op.hinting(path, hints[path])
    return Leaf(path, (op,)), hints


def _op(op: str, arg: Any, nocase: bool, test: Test, get: Callable[[Event], Any]) -> Op:
    """An operator node: its reference closure, plus what the code generator needs for
    the plain-``str`` fast path (the reference closure handles every other value)."""
    reference = _over_value(get, test, nocase)
    values = arg if isinstance(arg, list) else [arg]
    if nocase:  # fast path: the test on the lower-cased text (as the reference does)
        return Op("nocase", reference, cost=6, arg=test)
    if op in ("eq", "in"):
        exact = frozenset(v for v in values if v is not None)
        if all(isinstance(v, str) for v in exact):
            return Op("in", reference, cost=3, arg=exact)
        return Op("call", reference, cost=10)
    if op in ("prefix", "suffix", "contains"):
        return Op(op, reference, cost=4, arg=tuple(str(v) for v in values))
    if op == "regex":
        gates = []
        for pattern in values:
            literal = required_literal(pattern)
            gates.append((literal if len(literal) >= 2 else "", re.compile(pattern).search))
        return Op("regex", reference, cost=8, arg=tuple(gates))
    return Op("call", reference, cost=10)


def _text_equals(get: Callable[[Event], Any], text: str) -> Predicate:
    return lambda event: bool(get(event) == text)


def _exists(get: Callable[[Event], Any], want: bool) -> Predicate:
    return lambda event: (get(event) not in (None, "")) is want


def _over_value(get: Callable[[Event], Any], test: Test, nocase: bool) -> Predicate:
    """Apply ``test`` to the field value; a list value matches when any element does."""

    def predicate(event: Event) -> bool:
        return _value_matches(get(event), test, nocase)

    predicate.value_test = lambda value: _value_matches(value, test, nocase)  # type: ignore[attr-defined]
    return predicate


def _value_matches(value: Any, test: Test, nocase: bool) -> bool:
    if value is None:
        return False
    if isinstance(value, list | tuple):
        return any(item is not None and test(_norm(item, nocase)) for item in value)
    return test(_norm(value, nocase))


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
