"""The search language's parser: every production of the grammar (docs/search.md), the
aliases, and every error with the column it points at."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.search.query import (
    ALIASES,
    FIELDS,
    MAX_DEPTH,
    MAX_QUERY,
    MAX_TERMS,
    And,
    Everything,
    Match,
    Not,
    Or,
    QuerySyntaxError,
    Text,
    TimeRange,
    canonical_field,
    parse,
    term,
    to_text,
)
from stackwatch.search.times import Instant, parse_instant

DAY1 = Instant("2026-12-01", absolute=datetime(2026, 12, 1, tzinfo=UTC), date_only=True)
DAY2 = Instant("2026-12-02", absolute=datetime(2026, 12, 2, tzinfo=UTC), date_only=True)
HOUR_AGO = Instant("-1h", offset=3600)


@pytest.mark.parametrize(("text", "tree"), [
    # query := [or] END
    ("", Everything()),
    ("   ", Everything()),
    ("*", Everything()),
    # text terms: words, prefixes, phrases, phrase prefixes
    ("failed", Text("failed")),
    ("fail*", Text("fail", prefix=True)),
    ('"authorization failed"', Text("authorization failed", phrase=True)),
    ('"connection ref"*', Text("connection ref", phrase=True, prefix=True)),
    ('"say \\"hi\\" \\\\ now"', Text('say "hi" \\ now', phrase=True)),
    ("10.0.0.1", Text("10.0.0.1")),
    ("fe80::1", Text("fe80::1")),  # a colon after digits is not a field
    ("and or not", And((Text("and"), Text("or"), Text("not")))),  # lower case: words
    # field terms
    ("host:ctl1", Match("host", "ctl1")),
    ("user:adm*", Match("user", "adm", prefix=True)),
    ("request_id:*", Match("request_id", "", prefix=True)),
    ('user:"anna web"', Match("user", "anna web")),
    ('user:"anna w"*', Match("user", "anna w", prefix=True)),
    ('user:"a*b"', Match("user", "a*b")),  # quoted: a literal star
    ("source_ip:fe80::1", Match("source_ip", "fe80::1")),
    ("ip:203.0.113.45", Match("source_ip", "203.0.113.45")),
    ("HOST:ctl1", Match("host", "ctl1")),  # field names ignore case, values do not
    ("message:failed", Text("failed")),
    ('msg:"auth failed"', Text("auth failed", phrase=True)),
    ("text:fail*", Text("fail", prefix=True)),
    # and := unary (["AND"] unary)*
    ("a AND b", And((Text("a"), Text("b")))),
    ("a b", And((Text("a"), Text("b")))),
    ("a b AND c", And((Text("a"), Text("b"), Text("c")))),
    ("* AND host:x", Match("host", "x")),
    # or := and ("OR" and)*
    ("a OR b", Or((Text("a"), Text("b")))),
    ("a b OR c", Or((And((Text("a"), Text("b"))), Text("c")))),
    ("a OR b c", Or((Text("a"), And((Text("b"), Text("c")))))),
    ("a OR *", Everything()),
    # unary := "NOT" unary | primary
    ("NOT a", Not(Text("a"))),
    ("NOT NOT a", Not(Not(Text("a")))),
    ("a NOT b", And((Text("a"), Not(Text("b"))))),
    ("NOT a OR b", Or((Not(Text("a")), Text("b")))),
    # primary := "(" or ")"
    ("(a OR b) c", And((Or((Text("a"), Text("b"))), Text("c")))),
    ("NOT (a OR b)", Not(Or((Text("a"), Text("b"))))),
    ("((a))", Text("a")),
    ("(host:a OR host:b)AND c", And((Or((Match("host", "a"), Match("host", "b"))), Text("c")))),
    # time
    ("time:[2026-12-01 TO 2026-12-02]", TimeRange(DAY1, DAY2)),
    ("time:[ 2026-12-01  TO  2026-12-02 ]", TimeRange(DAY1, DAY2)),
    ("time:[* TO 2026-12-02]", TimeRange(None, DAY2)),
    ("time:[2026-12-01 TO *]", TimeRange(DAY1, None)),
    ("time:2026-12-01", TimeRange(DAY1, DAY1)),
    ("time:-1h", TimeRange(since=HOUR_AGO)),
    ("time:>=-1h", TimeRange(since=HOUR_AGO)),
    ("time:>-1h", TimeRange(since=HOUR_AGO)),
    ("time:<2026-12-02", TimeRange(until=DAY2, until_inclusive=False)),
    ("time:<=2026-12-02", TimeRange(until=DAY2)),
    ("@timestamp:>=now-1h", TimeRange(since=Instant("now-1h", offset=3600))),
    ('time:["2026-12-01 08:30" TO now]',
     TimeRange(parse_instant("2026-12-01 08:30"), Instant("now"))),
])
def test_parses(text: str, tree: object) -> None:
    assert parse(text) == tree


@pytest.mark.parametrize("name", FIELDS)
def test_every_field_is_a_term(name: str) -> None:
    node = parse(f"{name}:2026-12-01")
    assert node == (TimeRange(DAY1, DAY1) if name == "time" else Match(name, "2026-12-01"))


@pytest.mark.parametrize(("alias", "field"), sorted(ALIASES.items()))
def test_every_alias_names_its_field(alias: str, field: str) -> None:
    assert canonical_field(alias) == field
    assert canonical_field(alias.upper()) == field


@pytest.mark.parametrize(("text", "column", "message"), [
    ("user:", 6, "expected a value after 'user:'"),
    ("user: admin", 6, "expected a value after 'user:'"),
    ("outcome:failure AND user: admin", 26, "expected a value after 'user:'"),
    ("(user:)", 7, "expected a value after 'user:'"),
    ("color:red", 1, "unknown field 'color'"),
    ("a AND", 6, "expected a term after 'AND', found end of query"),
    ("a OR", 5, "expected a term after 'OR', found end of query"),
    ("NOT", 4, "expected a term after 'NOT', found end of query"),
    ("AND a", 1, "expected a term, found 'AND'"),
    ("a OR OR b", 6, "expected a term after 'OR', found 'OR'"),
    ("a AND )", 7, "expected a term after 'AND', found ')'"),
    ("(a", 3, "expected ')' to close the '(' at column 1, found end of query"),
    ("(a OR b", 8, "expected ')' to close the '(' at column 1"),
    ("a)", 2, "unexpected ')' (no '(' to close)"),
    ("()", 2, "empty parentheses"),
    ('"abc', 1, "unterminated quoted phrase"),
    ('user:"abc', 6, "unterminated quoted phrase"),
    ('a "', 3, "unterminated quoted phrase"),
    ("a*b", 2, "'*' may only end a word"),
    ("*abc", 1, "'*' may only end a word"),
    ("user:a*b", 7, "'*' may only end a value"),
    ("---", 1, "'---' has no letters or digits"),
    ('"..."', 1, "the phrase has no letters or digits"),
    ("message:--", 9, "the text has no letters or digits"),
    ('user:""', 6, "empty value: to find events without one, write NOT field:*"),
    ("user:(a OR b)", 6, "a field takes one value"),
    ("host:[a TO b]", 6, "ranges [a TO b] are for time: only"),
    ("time:[x TO 2026-12-02]", 7, "'x' is not a time"),
    ("time:[2026-12-01 2026-12-02]", 18, "expected 'TO' in time:[from TO until], found '2026-12-02]'"),
    ("time:[2026-12-01 TO 2026-12-02", 31, "expected ']' in time:[from TO until], found end of query"),
    ("time:[2026-12-01 TO ]", 21, "expected a time or '*' in the range"),
    ("time:[* TO *]", 6, "bounds nothing"),
    ("time:yesterday", 6, "'yesterday' is not a time"),
    ("time:2026-02-30", 6, "not a calendar date"),
    ("time:>", 7, "expected a time after 'time:>'"),
    ("time:-999999999w", 6, "more than a century"),
    ("a\x00b", 2, "NUL character"),
])
def test_errors_point_at_the_offending_token(text: str, column: int, message: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse(text)
    assert caught.value.column == column
    assert message in str(caught.value)
    assert str(caught.value).startswith(f"error at column {column}: ")


def test_a_query_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(QuerySyntaxError, match=f"longer than {MAX_QUERY}"):
        parse("a" * (MAX_QUERY + 1))


def test_a_value_longer_than_the_limit_is_refused() -> None:
    with pytest.raises(QuerySyntaxError, match="value is longer"):
        parse("user:" + "a" * 1025)


def test_too_many_terms_are_refused() -> None:
    parse(" ".join(["a"] * MAX_TERMS))
    with pytest.raises(QuerySyntaxError, match=f"more than {MAX_TERMS} terms"):
        parse(" ".join(["a"] * (MAX_TERMS + 1)))


@pytest.mark.parametrize("opener", ["(", "NOT "])
def test_nesting_is_bounded(opener: str) -> None:
    closer = ")" if opener == "(" else ""
    parse(opener * MAX_DEPTH + "a" + closer * MAX_DEPTH)
    with pytest.raises(QuerySyntaxError, match=f"nested more than {MAX_DEPTH} deep"):
        parse(opener * (MAX_DEPTH + 1) + "a" + closer * (MAX_DEPTH + 1))


def test_a_syntax_error_is_a_query_error_and_a_value_error() -> None:
    from stackwatch.store.base import QueryError

    with pytest.raises(QueryError):
        parse("user:")
    with pytest.raises(ValueError):
        parse("user:")


@pytest.mark.parametrize(("tree", "text"), [
    (Or((And((Text("a"), Text("b"))), Text("c"))), "a AND b OR c"),
    (And((Or((Text("a"), Text("b"))), Text("c"))), "(a OR b) AND c"),
    (Not(And((Text("a"), Text("b")))), "NOT (a AND b)"),
    (Match("user", "anna web"), 'user:"anna web"'),
    (Match("user", "adm", prefix=True), "user:adm*"),
    (Match("request_id", "", prefix=True), "request_id:*"),
    (Match("host", 'a"b'), 'host:"a\\"b"'),
    (TimeRange(DAY1, None), "time:>=2026-12-01"),
    (TimeRange(None, DAY2, until_inclusive=False), "time:<2026-12-02"),
    (TimeRange(None, DAY2), "time:[* TO 2026-12-02]"),
    (Everything(), "*"),
])
def test_to_text_writes_the_canonical_form(tree: object, text: str) -> None:
    assert to_text(tree) == text  # type: ignore[arg-type]
    assert parse(text) == tree


@pytest.mark.parametrize(("field", "value", "text"), [
    ("source_ip", "203.0.113.45", "source_ip:203.0.113.45"),
    ("user", "(invalid user)", 'user:"(invalid user)"'),
    ("host", "x*", 'host:"x*"'),
    ("user", "a\\b", 'user:"a\\\\b"'),
])
def test_term_quotes_values_that_need_it(field: str, value: str, text: str) -> None:
    assert term(field, value) == text
    assert parse(text) == Match(field, value)
