"""SigmaHQ rules, parsed and validated by pySigma, compiled into predicates over our events.

pySigma only converts rules into backend queries; it has no event evaluator. We take the
detection tree it builds (``rule.detection.parsed_condition[i].parsed``: ConditionAND/OR/
NOT over field/value expressions whose modifiers are already applied as wildcards, regular
expressions, CIDRs...) and compile it into closures, once, at load time:

* Sigma string comparison ignores case unless ``|cased``: literals are lower-cased here,
  and the event value is lower-cased once per field per group of tests (a list of values
  on one field is ONE closure that reads and lower-cases the field once).
* Wildcard patterns become ``==`` / ``in`` / ``startswith`` / ``endswith`` when they can,
  else one precompiled regex; ``|re`` is ``re.search`` (unanchored, as SQL ``REGEXP``).
* A field that is absent makes its test false (so ``not filter`` holds), numbers compare
  by their text form (as SQLite compares a TEXT column with a number), CIDRs by address.
* Keywords (a detection that is a plain list) search the event's full text (raw, plus the
  message when raw does not contain it); it is computed once per event for all rules.
* Every rule is guarded by its logsource (sigma_fields.LOGSOURCES) and carries the same
  facts as index hints, so the engine offers it only the events it can match.

Anything we cannot evaluate faithfully -- correlations, ``| count()`` aggregations,
``timeframe``, ``|expand`` placeholders, fields our events do not have, other products --
rejects the rule with its title and the reason (``RuleError``), never a silent skip.
Field, logsource and category mappings live in sigma_fields.py.
"""

from __future__ import annotations

import ipaddress
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any

import yaml
from sigma.collection import SigmaCollection
from sigma.conditions import (
    ConditionAND,
    ConditionFieldEqualsValueExpression,
    ConditionNOT,
    ConditionOR,
    ConditionValueExpression,
)
from sigma.correlations import SigmaCorrelationRule
from sigma.exceptions import SigmaError
from sigma.rule import SigmaRule
from sigma.types import (
    CompareOperators,
    Placeholder,
    SigmaBool,
    SigmaCasedString,
    SigmaCIDRExpression,
    SigmaCompareExpression,
    SigmaExists,
    SigmaExpansion,
    SigmaFieldReference,
    SigmaNull,
    SigmaNumber,
    SigmaRegularExpression,
    SigmaRegularExpressionFlag,
    SigmaString,
    SigmaTimestampPart,
    SpecialChars,
)

from stackwatch.core.errors import RuleError
from stackwatch.core.event import Event
from stackwatch.detect import sigma_fields as sf

Predicate = Callable[[Event], bool]
Getter = Callable[[Event], Any]
TextTest = Callable[[str], Any]
ValueTest = Callable[[Any], bool]

__all__ = ["Rejected", "SigmaLoad", "compile_sigma", "fulltext", "load_sigma_file"]


class Unsupported(Exception):
    """A rule uses something we cannot evaluate faithfully."""

    def __init__(self, reason: str, field_name: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field_name


@dataclass(frozen=True)
class Rejected:
    """One rule of a file that could not be loaded, and why."""

    title: str
    reason: str
    line: int | None = None


@dataclass
class SigmaLoad:
    """What one file gave: the compiled rules and the rejected ones."""

    rules: list[Any] = field(default_factory=list)  # stackwatch.detect.model.Rule
    rejected: list[Rejected] = field(default_factory=list)


# --------------------------------------------------------------------------- field access


def _path_getter(path: str) -> Getter:
    if path == "@records":
        return lambda event: event.attrs.get("records")
    if path == "@paths":
        return lambda event: event.attrs.get("paths")
    if path == "@argc":
        def argc(event: Event) -> Any:
            value = event.attrs.get("argc")
            if value is None and isinstance(argv := event.attrs.get("argv"), list):
                return len(argv)
            return value
        return argc
    if path.startswith("@argv:"):
        index = int(path[6:])
        raw_key = f"a{index}"

        def arg(event: Event) -> Any:
            argv = event.attrs.get("argv")
            if argv is None:  # no EXECVE record: the SYSCALL's own aN argument
                return event.attrs.get(raw_key)
            return argv[index] if index < len(argv) else None
        return arg
    head, _, rest = path.partition(".")
    if head == "attrs":
        keys = rest.split(".")
        if len(keys) == 1:
            key = keys[0]
            return lambda event: event.attrs.get(key)

        def nested(event: Event) -> Any:
            value: Any = event.attrs
            for key in keys:
                if not isinstance(value, dict):
                    return None
                value = value.get(key)
            return value
        return nested
    return attrgetter(path)


_AUDIT_KEY = re.compile(r"[A-Za-z_][\w\-]*")
_ARG_KEY = re.compile(r"a(\d+)")


def field_getter(profile: str, name: str) -> Getter:
    """The getter for Sigma field ``name`` in a logsource profile (see sigma_fields)."""
    paths = sf.FIELDS[profile].get(name)
    if paths is None:
        unavailable = sf.UNAVAILABLE.get(profile, {})
        if name in unavailable:
            raise Unsupported(f"field {name!r} is not available: {unavailable[name]}", name)
        if name in sf.EVENT_FIELDS or (name.startswith("attrs.") and len(name) > 6):
            paths = (name,)
        elif profile in sf.AUDITD_PASSTHROUGH_PROFILES and _AUDIT_KEY.fullmatch(name):
            arg = _ARG_KEY.fullmatch(name)
            paths = (f"@argv:{arg.group(1)}",) if arg else (f"attrs.{name}",)
        else:
            raise Unsupported(f"field {name!r} is not mapped for this logsource "
                              f"(profile {profile!r}; see detect/sigma_fields.py)", name)
    getters = [_path_getter(path) for path in paths]
    if len(getters) == 1:
        return getters[0]

    def first(event: Event) -> Any:
        for get in getters:
            value = get(event)
            if value is not None:
                return value
        return None
    return first


_fulltext_cache: tuple[Any, str, str] = (None, "", "")


def _fulltext_pair(event: Event) -> tuple[Any, str, str]:
    # One entry, swapped atomically: the engine runs every rule on one event before the
    # next, so keyword rules share a single computation (and lower-casing) per event.
    global _fulltext_cache
    cached = _fulltext_cache
    if cached[0] is event:
        return cached
    raw, message = event.raw, event.message
    text = raw if not message or message in raw else (f"{raw}\n{message}" if raw else message)
    cached = _fulltext_cache = (event, text, text.lower())
    return cached


_records_cache: tuple[Any, frozenset[str]] = (None, frozenset())


def _record_types(event: Event) -> frozenset[str]:
    """The lower-cased auditd record types of an event, computed once per event."""
    global _records_cache
    cached = _records_cache
    if cached[0] is event:
        return cached[1]
    records = event.attrs.get("records")
    types = (frozenset(str(item).lower() for item in records) if isinstance(records, (list, tuple))
             else frozenset())
    _records_cache = (event, types)
    return types


def fulltext(event: Event) -> str:
    """The text Sigma keywords search: ``raw``, plus ``message`` when raw lacks it."""
    return _fulltext_pair(event)[1]


def _fulltext_lower(event: Event) -> str:
    return _fulltext_pair(event)[2]


def _texts(value: Any) -> Sequence[str]:
    """The text forms of a field value (a list field gives one per element)."""
    if value.__class__ is str:
        return (value,)
    if isinstance(value, bool):
        return ("true" if value else "false",)
    if isinstance(value, (int, float)):
        return (str(value),)
    if isinstance(value, (list, tuple)):
        if all(item.__class__ is str for item in value):
            return value
        return [text for item in value if item is not None and not isinstance(item, (list, tuple, dict))
                for text in _texts(item)]
    return ()


# --------------------------------------------------------------------------- value tests


@dataclass(frozen=True)
class Leaf:
    """One compiled value test: ``ci`` on lower-cased text, ``cs`` on the text as is,
    ``val`` on the raw value (None included)."""

    kind: str
    test: Any


def _string_test(value: SigmaString, cased: bool) -> TextTest:
    tokens: list[str | SpecialChars] = []
    for part in value.s:
        if isinstance(part, Placeholder):
            raise Unsupported(f"placeholder %{part.name}% (|expand) needs a value pipeline")
        if isinstance(part, str):
            part = part if cased else part.lower()
            if tokens and isinstance(tokens[-1], str):
                tokens[-1] += part
                continue
        elif part is SpecialChars.WILDCARD_MULTI and tokens and tokens[-1] is part:
            continue
        tokens.append(part)
    multi = SpecialChars.WILDCARD_MULTI
    if not tokens:
        return "".__eq__
    if all(token is multi for token in tokens):
        return lambda text: True
    if len(tokens) == 1 and isinstance(tokens[0], str):
        return tokens[0].__eq__
    if len(tokens) == 2 and isinstance(tokens[0], str) and tokens[1] is multi:
        prefix = tokens[0]
        return lambda text: text.startswith(prefix)
    if len(tokens) == 2 and tokens[0] is multi and isinstance(tokens[1], str):
        suffix = tokens[1]
        return lambda text: text.endswith(suffix)
    if len(tokens) == 3 and tokens[0] is multi and tokens[2] is multi and isinstance(tokens[1], str):
        needle = tokens[1]
        return lambda text: needle in text
    anchored_start, anchored_end = tokens[0] is not multi, tokens[-1] is not multi
    body = tokens[(0 if anchored_start else 1):(len(tokens) if anchored_end else -1)]
    pattern = "".join(re.escape(t) if isinstance(t, str) else (".*" if t is multi else ".") for t in body)
    pattern = ("\\A" if anchored_start else "") + pattern + ("\\Z" if anchored_end else "")
    return re.compile(pattern, re.DOTALL).search


_RE_FLAGS = {SigmaRegularExpressionFlag.IGNORECASE: re.IGNORECASE,
             SigmaRegularExpressionFlag.MULTILINE: re.MULTILINE,
             SigmaRegularExpressionFlag.DOTALL: re.DOTALL}


def _regex_test(value: SigmaRegularExpression) -> TextTest:
    flags = 0
    for flag in value.flags:
        flags |= _RE_FLAGS[flag]
    try:
        return re.compile(str(value.regexp), flags).search
    except re.error as exc:
        raise Unsupported(f"regular expression {str(value.regexp)!r} is not valid for Python re: {exc}",
                          "re") from None


def _each(value: Any, test: Callable[[Any], bool]) -> bool:
    if isinstance(value, (list, tuple)):
        return any(test(item) for item in value if item is not None)
    return test(value)


def _number_test(number: int | float) -> ValueTest:
    text = str(number)

    def scalar(value: Any) -> bool:
        if value.__class__ is str:
            return value == text
        if isinstance(value, bool):
            return False
        if isinstance(value, (int, float)):
            return value == number
        return False
    return lambda value: value is not None and _each(value, scalar)


_COMPARE = {CompareOperators.LT: operator.lt, CompareOperators.LTE: operator.le,
            CompareOperators.GT: operator.gt, CompareOperators.GTE: operator.ge,
            CompareOperators.NEQ: operator.ne}


def _compare_test(value: SigmaCompareExpression) -> ValueTest:
    compare, bound = _COMPARE[value.op], value.number.number

    def scalar(item: Any) -> bool:
        if isinstance(item, bool):
            return False
        if not isinstance(item, (int, float)):
            try:
                item = float(item)
            except (TypeError, ValueError):
                return False
        return bool(compare(item, bound))
    return lambda item: item is not None and _each(item, scalar)


def _cidr_test(value: SigmaCIDRExpression) -> ValueTest:
    network = value.network

    def scalar(item: Any) -> bool:
        try:
            return ipaddress.ip_address(item) in network
        except ValueError:
            return False
    def test(item: Any) -> bool:
        if item.__class__ is str:
            return scalar(item)
        return isinstance(item, list) and _each(item, scalar)
    return test


def _bool_test(value: SigmaBool) -> ValueTest:
    wanted = value.boolean
    texts = ("true", "1") if wanted else ("false", "0")

    def scalar(item: Any) -> bool:
        if isinstance(item, bool):
            return item is wanted
        if isinstance(item, int):
            return item == int(wanted)
        return isinstance(item, str) and item.lower() in texts
    return lambda item: item is not None and _each(item, scalar)


def _leaves(value: Any, keyword: bool = False) -> list[Leaf]:
    """The tests of one value (a SigmaExpansion gives several, OR-linked)."""
    if isinstance(value, SigmaExpansion):
        return [leaf for item in value.values for leaf in _leaves(item, keyword)]
    if isinstance(value, SigmaString):
        cased = isinstance(value, SigmaCasedString)
        if keyword:  # a keyword matches anywhere in the text
            wrapped = SigmaString()
            wrapped.s = [SpecialChars.WILDCARD_MULTI, *value.s, SpecialChars.WILDCARD_MULTI]
            value = wrapped
        return [Leaf("cs" if cased else "ci", _string_test(value, cased))]
    if isinstance(value, SigmaRegularExpression):
        return [Leaf("cs", _regex_test(value))]
    if isinstance(value, SigmaTimestampPart):
        raise Unsupported("time-part modifiers (|minute, |hour, ...) are not supported")
    if isinstance(value, SigmaNumber):
        if keyword:
            needle = str(value.number)
            return [Leaf("cs", lambda text: needle in text)]
        return [Leaf("val", _number_test(value.number))]
    if keyword:
        raise Unsupported(f"a keyword of type {type(value).__name__} is not supported")
    if isinstance(value, SigmaNull):
        return [Leaf("val", lambda item: item is None)]
    if isinstance(value, SigmaExists):
        return [Leaf("val", (lambda item: item is not None) if value.exists else (lambda item: item is None))]
    if isinstance(value, SigmaBool):
        return [Leaf("val", _bool_test(value))]
    if isinstance(value, SigmaCIDRExpression):
        return [Leaf("val", _cidr_test(value))]
    if isinstance(value, SigmaCompareExpression):
        return [Leaf("val", _compare_test(value))]
    raise Unsupported(f"value type {type(value).__name__} is not supported")


# --------------------------------------------------------------------------- groups and trees


def _texts_slow(value: Any) -> Sequence[str]:
    return () if value is None else _texts(value)


def _group(get: Getter, leaves: list[Leaf], require_all: bool, get_lower: Getter | None = None) -> Predicate:
    """ONE closure for several tests on one field: read it (and lower-case it) once.

    The shapes SigmaHQ rules use most get a closure of their own (plain loops, no generator
    per event): one test, several case-insensitive tests, keywords; the rest is generic."""
    if len(leaves) == 1:
        require_all = False
    ci = tuple(leaf.test for leaf in leaves if leaf.kind == "ci")
    cs = tuple(leaf.test for leaf in leaves if leaf.kind == "cs")
    val = tuple(leaf.test for leaf in leaves if leaf.kind == "val")
    if get_lower is not None and not val:  # keywords: the text and its lower case are cached per event
        return _keyword_group(get, get_lower, ci, cs, require_all)
    if len(val) == 1 and not ci and not cs:
        test_value = val[0]
        return lambda event: test_value(get(event))
    if not val and len(ci) + len(cs) == 1:
        test, lower = (ci[0], True) if ci else (cs[0], False)

        def one(event: Event) -> bool:
            value = get(event)
            if value.__class__ is str:
                return bool(test(value.lower() if lower else value))
            for text in _texts_slow(value):  # noqa: SIM110 (hot path: a loop beats a generator)
                if test(text.lower() if lower else text):
                    return True
            return False
        return one
    if not val and not cs:
        def many(event: Event) -> bool:
            value = get(event)
            if value.__class__ is not str:
                return _generic(value, ci, cs, val, require_all)
            low = value.lower()
            if require_all:
                for test in ci:  # noqa: SIM110 (hot path: a loop beats a generator)
                    if not test(low):
                        return False
                return True
            for test in ci:  # noqa: SIM110 (hot path: a loop beats a generator)
                if test(low):
                    return True
            return False
        return many
    return lambda event: _generic(get(event), ci, cs, val, require_all)


def _generic(value: Any, ci: tuple[TextTest, ...], cs: tuple[TextTest, ...], val: tuple[ValueTest, ...],
             require_all: bool) -> bool:
    texts = _texts_slow(value)
    lows = [text.lower() for text in texts] if ci else ()
    if require_all:
        return (all(test(value) for test in val)
                and all(any(test(low) for low in lows) for test in ci)
                and all(any(test(text) for text in texts) for test in cs))
    return (any(test(value) for test in val)
            or any(test(low) for test in ci for low in lows)
            or any(test(text) for test in cs for text in texts))


def _keyword_group(get: Getter, get_lower: Getter, ci: tuple[TextTest, ...], cs: tuple[TextTest, ...],
                   require_all: bool) -> Predicate:
    if require_all:
        def every(event: Event) -> bool:
            if ci:
                low = get_lower(event)
                for test in ci:
                    if not test(low):
                        return False
            if cs:
                text = get(event)
                for test in cs:
                    if not test(text):
                        return False
            return True
        return every

    def some(event: Event) -> bool:
        if ci:
            low = get_lower(event)
            for test in ci:
                if test(low):
                    return True
        if cs:
            text = get(event)
            for test in cs:
                if test(text):
                    return True
        return False
    return some


def _fieldref(get: Getter, other: Getter, ref: SigmaFieldReference) -> Predicate:
    def pred(event: Event) -> bool:
        left, right = get(event), other(event)
        if left is None or right is None:
            return False
        for text in _texts(left):
            low = text.lower()
            for wanted in _texts(right):
                wanted = wanted.lower()
                if (low.startswith(wanted) if ref.starts_with else low.endswith(wanted) if ref.ends_with
                        else low == wanted):
                    return True
        return False
    return pred


def _any(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda event: first(event) or second(event)
    items = tuple(preds)

    def some(event: Event) -> bool:
        for pred in items:  # noqa: SIM110 (hot path: a loop beats a generator)
            if pred(event):
                return True
        return False
    return some


def _all(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        first, second = preds
        return lambda event: first(event) and second(event)
    items = tuple(preds)

    def every(event: Event) -> bool:
        for pred in items:  # noqa: SIM110 (hot path: a loop beats a generator)
            if not pred(event):
                return False
        return True
    return every


class _Compiler:
    """Compiles one rule's parsed condition for one logsource profile."""

    def __init__(self, profile: str) -> None:
        self.profile = profile
        self._getters: dict[str, Getter] = {}

    def getter(self, name: str) -> Getter:
        if name not in self._getters:
            self._getters[name] = field_getter(self.profile, name)
        return self._getters[name]

    def _simple(self, node: Any) -> tuple[str | None, list[Leaf]] | None:
        """(field or None for keywords, leaves) of a groupable expression, else None."""
        if isinstance(node, ConditionFieldEqualsValueExpression):
            if isinstance(node.value, SigmaFieldReference):
                return None
            self.getter(node.field)  # validate the field early, with its name in the error
            return node.field, _leaves(node.value)
        if isinstance(node, ConditionValueExpression):
            return None, _leaves(node.value, keyword=True)
        return None

    def _record_set(self, name: str | None, leaves: list[Leaf], require_all: bool) -> frozenset[str] | None:
        """The lower-cased record types of a group of plain ``type`` equalities (any of them
        must be present), else None."""
        if name is None or sf.FIELDS[self.profile].get(name) != ("@records",):
            return None
        if require_all and len(leaves) != 1:
            return None
        wanted: list[str] = []
        for leaf in leaves:
            text = getattr(leaf.test, "__self__", None)
            if leaf.kind != "ci" or leaf.test.__name__ != "__eq__" or not isinstance(text, str):
                return None
            wanted.append(text)
        return frozenset(wanted)

    def required_types(self, node: Any) -> frozenset[str] | None:
        """Record types of which an event must carry one for ``node`` to hold (None: no such
        constraint found). Lets a rule reject most auditd events with one set test."""
        simple = self._simple(node) if not isinstance(node, ConditionNOT) else None
        if simple is not None:
            return self._record_set(simple[0], simple[1], require_all=False)
        if isinstance(node, ConditionAND):
            found = [types for arg in node.args if (types := self.required_types(arg)) is not None]
            return min(found, key=len) if found else None
        if isinstance(node, ConditionOR):
            union: set[str] = set()
            for arg in node.args:
                types = self.required_types(arg)
                if types is None:
                    return None
                union |= types
            return frozenset(union)
        return None

    def _group_pred(self, name: str | None, leaves: list[Leaf], require_all: bool) -> Predicate:
        types = self._record_set(name, leaves, require_all)
        if types is not None:
            # `type: EXECVE` opens nearly every auditd rule: a set lookup on a per-event cache
            return lambda event: not types.isdisjoint(_record_types(event))
        if name is None:
            return _group(fulltext, leaves, require_all, get_lower=_fulltext_lower)
        return _group(self.getter(name), leaves, require_all)

    def _cost(self, name: str | None, leaves: list[Leaf]) -> int:
        if name is None:
            return 8  # keywords: a substring search over the whole record
        if self._record_set(name, leaves, require_all=False) is not None:
            return 0  # a set test on a per-event cache, and it rejects most auditd events
        paths = sf.FIELDS[self.profile].get(name, ())
        cost = 2 if any(path.startswith("@") for path in paths) else 1
        if any(leaf.kind == "cs" and getattr(leaf.test, "__self__", None).__class__ is re.Pattern
               for leaf in leaves):
            cost += 3  # a regular expression
        return cost + len(leaves) // 4

    def compile(self, node: Any) -> Predicate:
        if isinstance(node, ConditionNOT):
            inner = self.compile(node.args[0])
            return lambda event: not inner(event)
        if isinstance(node, ConditionFieldEqualsValueExpression) and isinstance(
                node.value, SigmaFieldReference):
            try:
                other = self.getter(node.value.field)
            except Unsupported as exc:
                raise Unsupported(exc.reason, node.value.field) from None
            return _fieldref(self.getter(node.field), other, node.value)
        simple = self._simple(node)
        if simple is not None:
            return self._group_pred(simple[0], simple[1], require_all=False)
        if isinstance(node, ConditionAND | ConditionOR):
            require_all = isinstance(node, ConditionAND)
            groups: dict[str | None, list[Leaf]] = {}
            others: list[Predicate] = []
            for arg in node.args:
                simple = self._simple(arg)
                # an expansion (|windash...) is an OR inside an AND: keep it a group of its own
                if simple is not None and (not require_all or len(simple[1]) == 1):
                    groups.setdefault(simple[0], []).extend(simple[1])
                else:
                    others.append(self.compile(arg))
            # cheapest first: a plain field equality usually decides before a list field
            # (auditd `type`), a regex or a keyword search has to be looked at
            ranked = sorted(groups.items(), key=lambda item: self._cost(*item))
            preds = [self._group_pred(name, leaves, require_all) for name, leaves in ranked]
            preds += others
            return _all(preds) if require_all else _any(preds)
        raise Unsupported(f"condition element {type(node).__name__} is not supported")


# --------------------------------------------------------------------------- loading


@dataclass
class _Doc:
    line: int
    ident: str | None
    title: str | None
    keys: dict[str, int]  # detection item field name (before '|') -> line


def _doc_index(text: str) -> list[_Doc]:
    """Where each YAML document and each detection field starts, for error locations."""
    docs: list[_Doc] = []
    for node in yaml.compose_all(text, Loader=yaml.SafeLoader):
        if not isinstance(node, yaml.MappingNode):
            continue
        doc = _Doc(node.start_mark.line + 1, None, None, {})
        for key, value in node.value:
            if key.value == "id" and isinstance(value, yaml.ScalarNode):
                doc.ident = value.value
            elif key.value == "title" and isinstance(value, yaml.ScalarNode):
                doc.title = value.value
            elif key.value == "detection" and isinstance(value, yaml.MappingNode):
                stack: list[yaml.Node] = [item for _, item in value.value]
                while stack:
                    item = stack.pop()
                    if isinstance(item, yaml.MappingNode):
                        for sub_key, sub_value in item.value:
                            name = str(sub_key.value).partition("|")[0]
                            doc.keys.setdefault(name, sub_key.start_mark.line + 1)
                            stack.append(sub_value)
                    elif isinstance(item, yaml.SequenceNode):
                        stack.extend(item.value)
        docs.append(doc)
    return docs


def _find_doc(docs: list[_Doc], ident: str | None, title: str | None) -> _Doc | None:
    for doc in docs:
        if ident is not None and doc.ident == ident:
            return doc
    return next((doc for doc in docs if title is not None and doc.title == title), None)


def _logsource(rule: SigmaRule) -> sf.LogSource:
    source = rule.logsource
    product = (source.product or "").lower()
    category, service = (source.category or "").lower(), (source.service or "").lower()
    if product not in sf.SUPPORTED_PRODUCTS:
        raise Unsupported(f"logsource product {product or '(none)'!r} is not supported (only linux)")
    if category and service:
        raise Unsupported(f"logsource with both category {category!r} and service {service!r} "
                          "is not supported")
    key = ("category", category) if category else ("service", service) if service else ("", "")
    found = sf.LOGSOURCES.get(key)
    if found is None:
        raise Unsupported(f"logsource {key[0]} {key[1]!r} of product linux is not supported "
                          f"(supported: {', '.join(name for _, name in sf.LOGSOURCES if name)})")
    return found


def _guard(source: sf.LogSource) -> Predicate | None:
    checks: list[Predicate] = []
    if source.kinds:
        kinds = source.kinds
        checks.append(lambda event: event.kind in kinds)
    if source.services:
        services = source.services
        checks.append(lambda event: event.service in services)
    if source.actions:
        actions = source.actions
        checks.append(lambda event: event.action in actions)
    return _all(checks) if checks else None


def compile_rule_condition(rule: SigmaRule, source: sf.LogSource) -> Predicate:
    """The predicate of a parsed Sigma rule (its logsource guard included)."""
    compiler = _Compiler(source.profile)
    try:
        trees = [condition.parsed for condition in rule.detection.parsed_condition]
    except SigmaError as exc:
        raise Unsupported(f"condition: {exc}", "condition") from None
    body = _any([compiler.compile(tree) for tree in trees])
    required = [found for tree in trees if (found := compiler.required_types(tree)) is not None]
    if required and len(required) == len(trees):
        # hoisted out of the tree: most auditd events carry none of the rule's record types
        types = frozenset[str]().union(*required)
        inner = body

        def body(event: Event) -> bool:
            return not types.isdisjoint(_record_types(event)) and inner(event)
    kinds, services, actions = source.kinds, source.services, source.actions
    if kinds and actions and not services:
        pred: Predicate = lambda event: event.kind in kinds and event.action in actions and body(event)  # noqa: E731
    elif kinds and not services and not actions:
        pred = lambda event: event.kind in kinds and body(event)  # noqa: E731
    elif services and not kinds and not actions:
        pred = lambda event: event.service in services and body(event)  # noqa: E731
    else:
        guard = _guard(source)
        if guard is None:
            return body
        pred = lambda event: guard(event) and body(event)  # noqa: E731
    # the engine offers the rule only events its index (= this guard) allows: it may run
    # the body alone (see codegen.residual_for)
    pred.residual = (body, tuple(source.index.items()))  # type: ignore[attr-defined]
    return pred


def _to_rule(rule: SigmaRule, path: str, line: int) -> Any:
    from stackwatch.detect.model import Rule  # the engine's model; imported late (no cycle)

    if rule.id is None:
        raise Unsupported("rule has no id", "id")
    if rule.detection is not None and "timeframe" in rule.detection.detections:
        raise Unsupported("timeframe (windowed aggregation) is not supported; write a native threshold rule",
                          "timeframe")
    source = _logsource(rule)
    condition = compile_rule_condition(rule, source)
    tags = [str(tag).lower() for tag in rule.tags]
    category = sf.category_for(tags, dict(rule.custom_attributes or {}))
    if category is None:
        raise Unsupported("cannot map the rule to an alert category: it has no attack.*/cve.* tag; "
                          f"add `{sf.CATEGORY_ATTRIBUTE}: <category>`", "tags")
    level = rule.level.name.lower() if rule.level is not None else "medium"
    return Rule(
        id=str(rule.id), title=rule.title, category=category, severity=sf.LEVEL_SEVERITY[level],
        condition=condition, kind="match", description=(rule.description or "").strip(),
        references=tuple(rule.references or ()), tags=tuple(tags), index=source.index,
        source=path, line=line,
    )


def compile_sigma(text: str, path: str = "") -> SigmaLoad:
    """Every rule of a Sigma YAML text (one or more documents): compiled or rejected."""
    result = SigmaLoad()
    try:
        docs = _doc_index(text)
        collection = SigmaCollection.from_yaml(text, collect_errors=True)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise RuleError(f"invalid YAML: {getattr(exc, 'problem', None) or exc}", path,
                        mark.line + 1 if mark is not None else None) from None
    except SigmaError as exc:
        raise RuleError(f"invalid Sigma collection: {exc}", path) from None
    for error in collection.errors:
        if not any(error in getattr(rule, "errors", ()) for rule in collection.rules):
            result.rejected.append(Rejected("(collection)", str(error)))
    for rule in collection.rules:
        ident = str(rule.id) if getattr(rule, "id", None) else None
        doc = _find_doc(docs, ident, rule.title)
        line = doc.line if doc is not None else None
        if isinstance(rule, SigmaCorrelationRule):
            kind = rule.type.name.lower() if rule.type is not None else "?"
            result.rejected.append(Rejected(rule.title, f"correlation rules ({kind}) are not supported; "
                                            "write a native threshold/cardinality rule", line))
            continue
        if not isinstance(rule, SigmaRule):
            reason = f"{type(rule).__name__} documents are not supported"
            result.rejected.append(Rejected(rule.title, reason, line))
            continue
        if rule.errors:
            result.rejected.append(Rejected(rule.title, "; ".join(str(e) for e in rule.errors), line))
            continue
        if rule._backreferences and not rule._output:
            result.rejected.append(Rejected(rule.title, "only referenced by a correlation rule "
                                            "(generate: false), which is not supported", line))
            continue
        try:
            result.rules.append(_to_rule(rule, path, line or 0))
        except Unsupported as exc:
            where = doc.keys.get(exc.field, line) if doc is not None and exc.field else line
            result.rejected.append(Rejected(rule.title, exc.reason, where))
        except RuleError as exc:  # the model's own validation (id not a UUID, ...)
            result.rejected.append(Rejected(rule.title, exc.reason, line))
        except SigmaError as exc:
            result.rejected.append(Rejected(rule.title, str(exc), line))
    return result


def load_sigma_file(path: str | Path) -> list[Any]:
    """The rules of a SigmaHQ-format file, compiled. Raises RuleError (with the file, and
    each rejected rule's title, line and reason) unless every rule in it loads."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(f"cannot read Sigma file: {exc}", name) from None
    loaded = compile_sigma(text, name)
    if loaded.rejected:
        first = loaded.rejected[0]
        details = "; ".join(f"{item.title!r}" + (f" (line {item.line})" if item.line else "")
                            + f": {item.reason}" for item in loaded.rejected)
        total = len(loaded.rules) + len(loaded.rejected)
        raise RuleError(f"{len(loaded.rejected)} of {total} Sigma rule(s) rejected: {details}",
                        name, first.line)
    if not loaded.rules:
        raise RuleError("no Sigma rule in file", name)
    return loaded.rules
