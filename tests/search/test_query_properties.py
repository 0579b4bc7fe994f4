"""Properties of the parser: any tree written with ``to_text`` parses back to itself, and
no input whatever makes ``parse`` raise anything but QuerySyntaxError."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from stackwatch.search.query import (
    FIELDS,
    And,
    Match,
    Node,
    Not,
    Or,
    QuerySyntaxError,
    Text,
    TimeRange,
    parse,
    to_text,
)
from stackwatch.search.times import parse_instant

WORD = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,10}", fullmatch=True).filter(
    lambda w: w.upper() not in ("AND", "OR", "NOT"))
ANY_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                   max_size=20)
PHRASE = ANY_TEXT.filter(lambda t: any(c.isalnum() for c in t))
VALUE_FIELDS = [f for f in FIELDS if f != "time"]
INSTANT = st.sampled_from(["2026-12-01", "2026-12-01T08:30", "now", "now-1h", "-15m", "-7d",
                           "2026-12-01 08:30:05", "2026-12-01T08:30:00+01:00"]).map(parse_instant)

leaves = st.one_of(
    st.builds(Text, WORD, st.just(False), st.booleans()),
    st.builds(Text, PHRASE, st.just(True), st.booleans()),
    st.builds(Match, st.sampled_from(VALUE_FIELDS), ANY_TEXT, st.booleans()),
    st.builds(Match, st.sampled_from(VALUE_FIELDS), st.just(""), st.just(True)),
    st.builds(TimeRange, INSTANT, st.none() | INSTANT, st.just(True)),
    st.builds(TimeRange, st.none(), INSTANT, st.booleans()),
)


def _normal(node: Node) -> Node:
    """What the parser makes of a tree: nested ANDs (ORs) flattened into their parent."""
    if isinstance(node, Not):
        return Not(_normal(node.item))
    if isinstance(node, And | Or):
        kind = type(node)
        items: list[Node] = []
        for item in map(_normal, node.items):
            items.extend(item.items if isinstance(item, kind) else (item,))
        return kind(tuple(items))
    return node


trees = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.builds(Not, inner),
        st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    ),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(trees)
def test_a_tree_written_as_text_parses_back_to_itself(tree: Node) -> None:
    tree = _normal(tree)
    assert parse(to_text(tree)) == tree


@settings(max_examples=1000, deadline=None)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_a_syntax_error(text: str) -> None:
    try:
        parse(text)
    except QuerySyntaxError as exc:
        assert 1 <= exc.column <= max(len(text), 1) + 1


PIECES = st.sampled_from(["user:", "host:", "time:", "ip:", "(", ")", '"', "*", " ", "AND", "OR", "NOT",
                          "[", "]", " TO ", "now-1h", "2026-12-01", ">=", "<", "adm", "-", ":", "\\", "x y",
                          "message:", "\t", "é", "fe80::1"])


@settings(max_examples=1500, deadline=None)
@given(st.lists(PIECES, max_size=30).map("".join))
def test_near_miss_queries_parse_or_raise_a_syntax_error(text: str) -> None:
    try:
        tree = parse(text)
    except QuerySyntaxError as exc:
        assert 1 <= exc.column <= len(text) + 1
    else:
        assert parse(to_text(tree)) == tree
