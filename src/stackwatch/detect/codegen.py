"""Conditions as a small tree, turned into one flat Python function per rule.

The condition compiler (conditions.py) builds the tree: ``And`` / ``Or`` / ``Not`` of
``Leaf`` nodes, a leaf being one field with its operators (``Op``). Every operator carries
a *reference* closure with the documented semantics (absent values, list values, numbers
vs text, ``nocase``). ``generate`` writes the whole tree as one expression::

    def _condition(e):
        return (e.service == c0 and e.outcome == c1
                and e.initiator.source_ip not in c2
                and (v3 in c3 if (v3 := e.action).__class__ is str else f3(v3)))

cheapest tests first, with a fast path for the common case (the field holds a plain
``str``) and the operator's reference closure for anything else, so the generated
predicate returns exactly what the reference does (tests compare them on random
conditions and events). Safety: the only names in the source are validated field
identifiers (``check_path``) and generated ones (``c0``, ``v1``...); every rule value
(strings, lists, regexes, attrs keys) is passed as a constant in the function's
namespace, never written into the source.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final

from stackwatch.core.event import Event, Initiator, Target
from stackwatch.detect.fields import getter

Predicate = Callable[[Event], bool]

NONE_OR_EMPTY: Final = (None, "")
_STRUCT_FIELDS: Final = {"initiator": frozenset(Initiator.__struct_fields__),
                         "target": frozenset(Target.__struct_fields__)}
_EVENT_FIELDS: Final = frozenset(Event.__struct_fields__)


@dataclass(frozen=True)
class Op:
    """One operator of a leaf. ``name`` picks the generated form: ``text_eq`` (``==``),
    ``exists`` (arg: wanted bool), ``in`` (arg: frozenset of str), ``prefix`` / ``suffix``
    / ``contains`` (arg: tuple of str), ``regex`` (arg: tuple of (literal gate, search)),
    ``nocase`` (arg: the test on lower-cased text), ``call`` (only the reference)."""

    name: str
    reference: Predicate  # event -> bool, the documented semantics
    cost: int = 10
    arg: Any = None
    hint: tuple[str, frozenset[str]] | None = None  # (index dimension, values) this op implies

    def hinting(self, dim: str, values: frozenset[str]) -> Op:
        return replace(self, hint=(dim, values))


@dataclass(frozen=True)
class Leaf:
    path: str  # '' for an opaque predicate (Op 'call')
    ops: tuple[Op, ...]

    @property
    def cost(self) -> int:
        return sum(op.cost for op in self.ops)


@dataclass(frozen=True)
class And:
    parts: tuple[Node, ...]  # empty: always true

    @property
    def cost(self) -> int:
        return sum(p.cost for p in self.parts)


@dataclass(frozen=True)
class Or:
    parts: tuple[Node, ...]

    @property
    def cost(self) -> int:
        return sum(p.cost for p in self.parts)


@dataclass(frozen=True)
class Not:
    inner: Node

    @property
    def cost(self) -> int:
        return self.inner.cost


Node = Leaf | And | Or | Not


# ---------------------------------------------------------------------------- reference


def interpret(node: Node) -> Predicate:
    """The tree evaluated with the reference closures only (slow; the yardstick)."""
    if isinstance(node, Leaf):
        refs = tuple(op.reference for op in node.ops)
        return lambda event: all(ref(event) for ref in refs)
    if isinstance(node, Not):
        inner = interpret(node.inner)
        return lambda event: not inner(event)
    children = tuple(interpret(p) for p in node.parts)
    if isinstance(node, And):
        return lambda event: all(c(event) for c in children)
    return lambda event: any(c(event) for c in children)


# ---------------------------------------------------------------------------- generation


class FunctionSource:
    """Collects constants (passed in the namespace) while writing one expression."""

    def __init__(self) -> None:
        self.namespace: dict[str, Any] = {"__builtins__": {}, "str": str, "bool": bool, "NE": NONE_OR_EMPTY}
        self._count = 0

    def name(self, value: Any, prefix: str = "c") -> str:
        self._count += 1
        name = f"{prefix}{self._count}"
        self.namespace[name] = value
        return name

    def var(self) -> str:
        self._count += 1
        return f"v{self._count}"

    def function(self, name: str, expression: str, where: str) -> Callable[[Event], Any]:
        """Compile ``def <name>(e): return <expression>`` in this namespace."""
        text = f"def {name}(e):\n    return {expression}\n"
        exec(compile(text, where, "exec"), self.namespace)  # noqa: S102 - see the module docstring
        function: Callable[[Event], Any] = self.namespace[name]
        function.__doc__ = text  # what runs, for debugging (``print(rule.condition.__doc__)``)
        return function

    def access(self, path: str) -> str:
        """Source reading ``path`` from the event ``e`` (same result as ``fields.getter``)."""
        head, _, rest = path.partition(".")
        if head in _STRUCT_FIELDS and rest in _STRUCT_FIELDS[head] and _identifier(rest):
            return f"e.{head}.{rest}"
        if head in _EVENT_FIELDS and not rest and _identifier(head):
            return f"e.{head}"
        if head == "attrs" and rest and "." not in rest:
            return f"e.attrs.get({self.name(rest)})"
        return f"{self.name(getter(path), 'g')}(e)"


def _identifier(name: str) -> bool:
    return name.isidentifier() and not keyword.iskeyword(name)


def _op_source(src: FunctionSource, path: str, op: Op) -> str:
    if op.name == "call":
        return f"{src.name(op.reference, 'f')}(e)"
    access = src.access(path)
    if op.name == "text_eq":
        return f"{access} == {src.name(op.arg)}"
    if op.name == "exists":
        return f"{access} {'not in' if op.arg else 'in'} NE"
    var = src.var()
    slow = f"{src.name(op.reference.value_test, 'f')}({var})"  # type: ignore[attr-defined]
    if op.name == "in":
        values = sorted(op.arg)
        fast = f"{var} == {src.name(values[0])}" if len(values) == 1 else f"{var} in {src.name(op.arg)}"
    elif op.name in ("prefix", "suffix"):
        method = "startswith" if op.name == "prefix" else "endswith"
        fast = f"{var}.{method}({src.name(op.arg)})"
    elif op.name == "contains":
        fast = " or ".join(f"{src.name(needle)} in {var}" for needle in op.arg)
    elif op.name == "regex":
        alternatives = []
        for literal, search in op.arg:
            found = f"{src.name(search, 's')}({var}) is not None"
            alternatives.append(f"({src.name(literal)} in {var} and {found})" if literal else found)
        fast = " or ".join(alternatives)
    elif op.name == "nocase":
        fast = f"{src.name(op.arg, 't')}({var}.lower())"
    else:  # pragma: no cover - every Op name is handled above
        raise ValueError(f"unknown op {op.name!r}")
    return f"(({fast}) if ({var} := {access}).__class__ is str else {slow})"


def _source(src: FunctionSource, node: Node, drop_hinted: bool = False) -> str:
    """The expression for ``node``; ``drop_hinted``: leave out the top-level operators the
    engine's index already guarantees (the residual condition)."""
    if isinstance(node, Leaf):
        ops = [op for op in node.ops if not (drop_hinted and op.hint is not None)]
        parts = [_op_source(src, node.path, op) for op in sorted(ops, key=lambda o: o.cost)]
        return _join(parts, "and")
    if isinstance(node, Not):
        return f"not ({_source(src, node.inner)})"
    children = sorted(node.parts, key=lambda p: p.cost)  # pure tests: order does not change results
    parts = [_source(src, c, drop_hinted and isinstance(node, And)) for c in children]
    return _join([p for p in parts if p != "True"] if isinstance(node, And) else parts,
                 "and" if isinstance(node, And) else "or")


def _join(parts: list[str], word: str) -> str:
    if not parts:
        return "True" if word == "and" else "False"
    if len(parts) == 1:
        return parts[0]
    return "(" + f" {word} ".join(f"({p})" for p in parts) + ")"


def _build(node: Node, where: str, drop_hinted: bool) -> tuple[Predicate, str]:
    src = FunctionSource()
    expression = _source(src, node, drop_hinted)
    # every generated test gives a bool; only opaque predicates ('call') may not
    wrapped = f"bool({expression})" if _has_call(node) else expression
    return src.function("_condition", wrapped, f"<condition {where}>"), expression


def _has_call(node: Node) -> bool:
    if isinstance(node, Leaf):
        return any(op.name == "call" for op in node.ops)
    if isinstance(node, Not):
        return _has_call(node.inner)
    return any(_has_call(p) for p in node.parts)


def _hinted(node: Node) -> list[tuple[str, frozenset[str]]]:
    """Hints of the top-level operators that the residual leaves out."""
    leaves = node.parts if isinstance(node, And) else (node,)
    return [op.hint for leaf in leaves if isinstance(leaf, Leaf) for op in leaf.ops if op.hint is not None]


def generate(node: Node, where: str = "<condition>") -> Predicate:
    """One compiled function for ``node``. When some top-level tests are equalities the
    engine's index enforces, the function also gets ``.residual = (predicate or None,
    implied)``: the condition without them, valid for events whose ``dim`` value is in
    ``values`` for every ``(dim, values)`` of ``implied`` (None: nothing left to test).
    It always gets ``.node``: the tree it was made from (what the record prefilter reads)."""
    function, _ = _build(node, where, False)
    function.node = node  # type: ignore[attr-defined]  # the tree, for detect/prefilter.py
    implied = tuple(_hinted(node))
    if implied:
        residual, expression = _build(node, f"{where} (residual)", True)
        function.residual = (None if expression == "True" else residual, implied)  # type: ignore[attr-defined]
    return function


def residual_for(predicate: Predicate, index: Any) -> tuple[bool, Predicate | None]:
    """(usable, residual) for a rule whose events are already filtered by ``index``:
    usable when every test the residual dropped is implied by the index."""
    found = getattr(predicate, "residual", None)
    if found is None:
        return False, predicate
    residual, implied = found
    for dim, values in implied:
        allowed = index.get(dim)
        if allowed is None or not allowed <= values:
            return False, predicate
    return True, residual
