"""The search language: ``field:value`` terms, ``AND``/``OR``/``NOT``, parentheses, quoted
phrases, prefix wildcards, time ranges and free text. The grammar is in docs/search.md.

A small recursive-descent parser turns the text into an immutable tree (``Node``); a backend
compiles the tree into its own query (``store/sqlite_search.py``: parameterised SQL, values
are never spliced into it). ``to_text`` writes a tree back as query text that parses to the
same tree. Every mistake raises ``QuerySyntaxError`` with the 1-based column it points at;
nothing else escapes ``parse``, whatever the input.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from stackwatch.search.times import Instant, TimeSpecError, parse_instant
from stackwatch.store.base import MAX_FIELD, QueryError

MAX_QUERY: Final = 2048
"""Longest query text, in characters."""
MAX_TERMS: Final = 64
"""Most terms (field terms, words, phrases) in one query."""
MAX_DEPTH: Final = 32
"""Deepest nesting of parentheses and NOTs (bounds the parser's recursion)."""

FIELDS: Final = ("host", "service", "user", "source_ip", "project", "request_id", "severity", "action",
                 "outcome", "kind", "target", "time")
"""The fields a term may name. ``user`` is the initiator's name or id, ``target`` the
target's name or id, ``kind`` the record kind (oslo_log, cadf, syslog...)."""
ALIASES: Final = {
    "hostname": "host", "svc": "service", "program": "service",
    "username": "user", "account": "user", "user_name": "user", "user_id": "user", "initiator": "user",
    "ip": "source_ip", "src_ip": "source_ip", "client": "source_ip", "client_ip": "source_ip",
    "tenant": "project", "project_id": "project",
    "req": "request_id", "request": "request_id", "req_id": "request_id",
    "level": "severity", "sev": "severity",
    "category": "kind", "type": "kind",
    "result": "outcome", "status": "outcome",
    "timestamp": "time", "@timestamp": "time",
    "message": "text", "msg": "text", "text": "text",
}
"""Other names people type for the same fields; ``message:`` (and ``text:``) is free text."""
OPERATORS: Final = frozenset({"AND", "OR", "NOT"})

_NAME: Final = re.compile(r"@?[A-Za-z_][A-Za-z0-9_.]*")
_LETTERS: Final = re.compile(r"@?[A-Za-z_.]+")
_WORD_CHAR: Final = re.compile(r"[^\W_]")
_STOP: Final = frozenset('()"')


class QuerySyntaxError(QueryError):
    """The query text is not in the language. ``column`` is 1-based."""

    def __init__(self, column: int, message: str) -> None:
        self.column = column
        self.reason = message
        super().__init__(f"error at column {column}: {message}")


# -- the tree -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Everything:
    """The empty query (or a lone ``*``): every event."""


@dataclass(frozen=True, slots=True)
class Text:
    """Free text over messages: a word (``prefix``: ``fail*``) or a quoted phrase."""

    value: str
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Match:
    """``field:value`` (exact), ``field:val*`` (prefix) or ``field:*`` (any value: prefix '')."""

    field: str
    value: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``since <= time`` and ``time <= until`` (``until_inclusive``; else ``time < until``)."""

    since: Instant | None = None
    until: Instant | None = None
    until_inclusive: bool = True


@dataclass(frozen=True, slots=True)
class Not:
    item: Node


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Node, ...]


Node = Everything | Text | Match | TimeRange | Not | And | Or


def canonical_field(name: str) -> str | None:
    """The field a name (or alias) stands for, ``"text"`` for free text, None if unknown."""
    lowered = name.lower()
    return lowered if lowered in FIELDS else ALIASES.get(lowered)


# -- parsing --------------------------------------------------------------------------------


def parse(text: str) -> Node:
    """The tree of ``text``; raises QuerySyntaxError (with a column) for anything else."""
    if not isinstance(text, str):
        raise QuerySyntaxError(1, "the query must be text")
    if len(text) > MAX_QUERY:
        raise QuerySyntaxError(MAX_QUERY + 1, f"the query is longer than {MAX_QUERY} characters")
    if "\x00" in text:
        raise QuerySyntaxError(text.index("\x00") + 1, "the query holds a NUL character")
    return _Parser(text).query()


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "(", ")", "AND", "OR", "NOT", "FIELD", "WORD", "PHRASE", "PHRASE*", "END"
    text: str
    start: int  # 0-based offset in the query
    end: int


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.terms = 0
        self.depth = 0
        self.token = self._lex()

    # The lexer reads one token ahead; a FIELD token stops right after its colon and the value
    # is read by ``_value`` (values have their own rules: colons, brackets, comparison signs).

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _lex(self) -> _Token:
        self._skip_space()
        start, text = self.pos, self.text
        if start >= len(text):
            return _Token("END", "", start, start)
        char = text[start]
        if char in "()":
            self.pos += 1
            return _Token(char, char, start, start + 1)
        if char == '"':
            value = self._quoted()
            if text.startswith("*", self.pos):  # "connection ref"*: the phrase's last word is a prefix
                self.pos += 1
                return _Token("PHRASE*", value, start, self.pos)
            return _Token("PHRASE", value, start, self.pos)
        end = start
        while end < len(text) and not text[end].isspace() and text[end] not in _STOP:
            end += 1
        word = text[start:end]
        if word in OPERATORS:
            self.pos = end
            return _Token(word, word, start, end)
        name, colon, _ = word.partition(":")
        if colon and _NAME.fullmatch(name):
            if canonical_field(name) is not None:
                self.pos = start + len(name) + 1
                return _Token("FIELD", name, start, self.pos)
            if _LETTERS.fullmatch(name):
                raise QuerySyntaxError(start + 1, f"unknown field '{name}' (fields: {', '.join(FIELDS)}; "
                                                  "quote text that holds a colon)")
        self.pos = end
        return _Token("WORD", word, start, end)

    def _quoted(self) -> str:
        """A double-quoted string from ``self.pos`` (``\\"`` and ``\\\\`` escape); moves past it."""
        text, start = self.text, self.pos
        out: list[str] = []
        i = start + 1
        while i < len(text):
            char = text[i]
            if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
            elif char == '"':
                self.pos = i + 1
                return "".join(out)
            else:
                out.append(char)
                i += 1
        raise QuerySyntaxError(start + 1, "unterminated quoted phrase (a '\"' opened here is never closed)")

    def _advance(self) -> _Token:
        token = self.token
        self.token = self._lex()
        return token

    def _where(self, token: _Token) -> str:
        return "end of query" if token.kind == "END" else f"'{token.text}'"

    def query(self) -> Node:
        if self.token.kind == "END":
            return Everything()
        node = self._or()
        if self.token.kind != "END":
            token = self.token
            if token.kind == ")":
                raise QuerySyntaxError(token.start + 1, "unexpected ')' (no '(' to close)")
            raise QuerySyntaxError(token.start + 1, f"unexpected {self._where(token)}")
        return node

    def _or(self) -> Node:
        items = [self._and()]
        while self.token.kind == "OR":
            operator = self._advance()
            items.append(self._and(after=operator))
        return _either(items)

    def _and(self, after: _Token | None = None) -> Node:
        items = [self._unary(after)]
        while self.token.kind not in ("OR", ")", "END"):
            operator = self._advance() if self.token.kind == "AND" else None
            items.append(self._unary(operator))
        return _both(items)

    def _unary(self, after: _Token | None) -> Node:
        token = self.token
        if token.kind == "NOT":
            self._nest(token)
            self._advance()
            node = Not(self._unary(token))
            self.depth -= 1
            return node
        return self._primary(after)

    def _nest(self, token: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise QuerySyntaxError(token.start + 1, f"nested more than {MAX_DEPTH} deep")

    def _primary(self, after: _Token | None) -> Node:
        token = self.token
        if token.kind == "(":
            self._nest(token)
            self._advance()
            if self.token.kind == ")":
                raise QuerySyntaxError(self.token.start + 1, "empty parentheses: expected a term")
            node = self._or()
            if self.token.kind != ")":
                found, opened = self._where(self.token), token.start + 1
                raise QuerySyntaxError(self.token.start + 1,
                                       f"expected ')' to close the '(' at column {opened}, found {found}")
            self._advance()
            self.depth -= 1
            return node
        if token.kind == "FIELD":
            return self._field(token)
        if token.kind in ("WORD", "PHRASE", "PHRASE*"):
            self._advance()
            return self._text(token)
        context = f" after '{after.text}'" if after is not None else ""
        raise QuerySyntaxError(token.start + 1, f"expected a term{context}, found {self._where(token)}")

    def _count(self, token: _Token) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise QuerySyntaxError(token.start + 1, f"more than {MAX_TERMS} terms")

    def _text(self, token: _Token) -> Node:
        value = token.text
        if token.kind != "WORD":
            if not _WORD_CHAR.search(value):
                raise QuerySyntaxError(token.start + 1, "the phrase has no letters or digits to search for")
            self._count(token)
            return Text(value, phrase=True, prefix=token.kind == "PHRASE*")
        if value == "*":
            return Everything()
        stem, prefix = (value[:-1], True) if value.endswith("*") else (value, False)
        if "*" in stem:
            raise QuerySyntaxError(token.start + stem.index("*") + 1,
                                   "'*' may only end a word (a prefix, like fail*)")
        if not _WORD_CHAR.search(stem):
            raise QuerySyntaxError(token.start + 1, f"'{value}' has no letters or digits to search for "
                                                    "(quote it if you meant it)")
        self._count(token)
        return Text(stem, prefix=prefix)

    def _field(self, token: _Token) -> Node:
        self._count(token)
        field = canonical_field(token.text)
        assert field is not None  # the lexer only makes FIELD tokens of known names
        value_start = self.pos
        if value_start >= len(self.text) or self.text[value_start].isspace() or self.text[value_start] == ")":
            raise QuerySyntaxError(value_start + 1, f"expected a value after '{token.text}:'")
        if self.text[value_start] == "(":
            raise QuerySyntaxError(value_start + 1, "a field takes one value: write (user:a OR user:b), "
                                                    "not user:(a OR b)")
        if field == "time":
            node: Node = self._time(token)
        elif self.text[value_start] == "[":
            raise QuerySyntaxError(value_start + 1, "ranges [a TO b] are for time: only")
        else:
            value, quoted = self._value_text()
            node = self._match(field, value, quoted, value_start)
        self.token = self._lex()
        return node

    def _value_text(self) -> tuple[str, bool]:
        """The raw value at ``self.pos`` (quoted or bare) and whether it was quoted."""
        if self.text[self.pos] == '"':
            return self._quoted(), True
        start = end = self.pos
        while end < len(self.text) and not self.text[end].isspace() and self.text[end] not in _STOP:
            end += 1
        self.pos = end
        return self.text[start:end], False

    def _match(self, field: str, value: str, quoted: bool, start: int) -> Node:
        prefix = False
        if quoted and self.text.startswith("*", self.pos):
            self.pos += 1
            prefix = True
        elif not quoted and value.endswith("*"):
            value, prefix = value[:-1], True
        if not quoted and "*" in value:
            raise QuerySyntaxError(start + value.index("*") + 1,
                                   "'*' may only end a value (a prefix, like adm*)")
        if len(value) > MAX_FIELD:
            raise QuerySyntaxError(start + 1, f"the value is longer than {MAX_FIELD} characters")
        if field == "text":
            if not _WORD_CHAR.search(value):
                raise QuerySyntaxError(start + 1, "the text has no letters or digits to search for")
            return Text(value, phrase=quoted, prefix=prefix)
        if not value and not prefix:
            raise QuerySyntaxError(start + 1, "empty value: to find events without one, write NOT field:*")
        return Match(field, value, prefix)

    def _time(self, token: _Token) -> Node:
        text, start = self.text, self.pos
        if text[start] == "[":
            return self._time_range(start)
        for sign in (">=", "<=", ">", "<"):
            if text.startswith(sign, start):
                self.pos += len(sign)
                if self.pos >= len(text) or text[self.pos].isspace():
                    raise QuerySyntaxError(self.pos + 1, f"expected a time after '{token.text}:{sign}'")
                instant = self._instant(self.pos)
                if sign[0] == ">":
                    return TimeRange(since=instant)
                return TimeRange(until=instant, until_inclusive=sign == "<=")
        instant = self._instant(start)
        if instant.absolute is None:  # time:-1h is "the last hour"
            return TimeRange(since=instant)
        return TimeRange(since=instant, until=instant)  # a date is that day; a moment, that moment

    def _instant(self, start: int, stop: str = "") -> Instant:
        if self.text[start] == '"':
            value = self._quoted()
        else:
            end = start
            while (end < len(self.text) and not self.text[end].isspace() and self.text[end] not in _STOP
                   and self.text[end] not in stop):
                end += 1
            value, self.pos = self.text[start:end], end
        try:
            return parse_instant(value)
        except TimeSpecError as exc:
            raise QuerySyntaxError(start + 1, str(exc)) from None

    def _time_range(self, open_at: int) -> Node:
        self.pos = open_at + 1
        bounds: list[Instant | None] = []
        for expected in ("TO", "]"):
            self._skip_space()
            start = self.pos
            if start >= len(self.text) or self.text[start] == "]":
                raise QuerySyntaxError(start + 1, "expected a time or '*' in the range")
            after = self.text[start + 1:start + 2]
            if self.text.startswith("*", start) and (not after or after.isspace() or after == "]"):
                self.pos += 1
                bounds.append(None)
            else:
                bounds.append(self._instant(start, stop="]"))
            self._skip_space()
            if not self.text.startswith(expected, self.pos):
                found = self.text[self.pos:].split(maxsplit=1)
                shown = f"'{found[0][:20]}'" if found else "end of query"
                raise QuerySyntaxError(self.pos + 1,
                                       f"expected '{expected}' in time:[from TO until], found {shown}")
            self.pos += len(expected)
        since, until = bounds
        if since is None and until is None:
            raise QuerySyntaxError(open_at + 1, "time:[* TO *] bounds nothing: leave it out")
        return TimeRange(since=since, until=until)


def _both(items: list[Node]) -> Node:
    flat: list[Node] = []
    for item in items:
        if isinstance(item, And):
            flat.extend(item.items)
        elif not isinstance(item, Everything):
            flat.append(item)
    if not flat:
        return Everything()
    return flat[0] if len(flat) == 1 else And(tuple(flat))


def _either(items: list[Node]) -> Node:
    if any(isinstance(item, Everything) for item in items):
        return Everything()
    flat: list[Node] = []
    for item in items:
        flat.extend(item.items if isinstance(item, Or) else (item,))
    return flat[0] if len(flat) == 1 else Or(tuple(flat))


# -- writing back -----------------------------------------------------------------------------

_BARE_VALUE: Final = re.compile(r'[^\s()"*\\\[<>]+')


def quote(value: str) -> str:
    """``value`` as a quoted string of the language."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def value_text(value: str) -> str:
    """A field value as the language writes it: bare when it can be, else quoted."""
    return value if _BARE_VALUE.fullmatch(value) else quote(value)


def term(field: str, value: str) -> str:
    """The query text of ``field:value`` (for pivot links)."""
    return f"{field}:{value_text(value)}"


def to_text(node: Node) -> str:
    """Query text that parses back to ``node``."""
    if isinstance(node, Everything):
        return "*"
    if isinstance(node, Text):
        body = quote(node.value) if node.phrase else _word_text(node.value)
        return body + ("*" if node.prefix else "")
    if isinstance(node, Match):
        if node.prefix and not node.value:
            return f"{node.field}:*"
        return f"{node.field}:{value_text(node.value)}" + ("*" if node.prefix else "")
    if isinstance(node, TimeRange):
        return _time_text(node)
    if isinstance(node, Not):
        inner = to_text(node.item)
        return "NOT " + (f"({inner})" if isinstance(node.item, And | Or) else inner)
    if isinstance(node, And):
        return " AND ".join(f"({to_text(i)})" if isinstance(i, Or) else to_text(i) for i in node.items)
    return " OR ".join(to_text(i) for i in node.items)


def _word_text(word: str) -> str:
    """A free-text word as written: bare, or as ``message:word`` when bare it would read as
    an operator or a field (``message:`` takes it verbatim up to the next space)."""
    name, colon, _ = word.partition(":")
    if word in OPERATORS or (colon and _NAME.fullmatch(name)):
        return "message:" + word
    return word


def _instant_text(instant: Instant | None) -> str:
    if instant is None:
        return "*"
    return instant.text if _BARE_VALUE.fullmatch(instant.text) else quote(instant.text)


def _time_text(node: TimeRange) -> str:
    if node.since is not None and node.until is None:
        return f"time:>={_instant_text(node.since)}"
    if node.since is None and node.until is not None and not node.until_inclusive:
        return f"time:<{_instant_text(node.until)}"
    return f"time:[{_instant_text(node.since)} TO {_instant_text(node.until)}]"
