"""Full text on PostgreSQL: the writer's word vectors and the searches' phrase queries."""

from __future__ import annotations

import psycopg
import pytest

from stackwatch.store.base import EventQuery
from stackwatch.store.postgres import open_store
from stackwatch.store.postgres import text as fts
from stackwatch.testing import make_event


def test_words_are_runs_of_letters_and_digits_case_folded() -> None:
    assert fts.words("Failed req-AB12 from 10.0.0.1_x É") == ["failed", "req", "ab12", "from", "10", "0",
                                                               "0", "1", "x", "é"]


@pytest.mark.parametrize(("text", "query"), [
    ("10.0.0.1", "('10' <-> '0' <-> '0' <-> '1')"),
    ("\"'; DROP", "('drop')"),
    ("%_\\", None),
])
def test_a_phrase_is_its_words_in_order_and_nothing_else(text: str, query: str | None) -> None:
    assert fts.phrase(text) == query


@pytest.mark.parametrize("message", [
    " ".join(["word"] * 20_000),                  # past PostgreSQL's 16383 positions
    "x" * 5000 + " short",                        # a word past the lexeme limit
    " ".join(f"w{i}" for i in range(20_000)),     # many distinct words
    "\x00 nul \x00 inside",
])
def test_any_message_makes_a_vector_postgresql_takes(pg_database: str, message: str) -> None:
    with psycopg.connect(pg_database) as conn:
        assert conn.execute("SELECT length(%s::tsvector) > 0", (fts.vector(message),)).fetchone() == (True,)


def test_hostile_messages_are_stored_and_found(pg_database: str) -> None:
    with open_store(pg_database, schema="hostile", writer="t") as store:
        seqs = store.append_events([make_event(message="x" * 5000 + " needle"),
                                    make_event(message="a\x00b needle2", host="h\x00st")])
        hits = store.search_events(EventQuery(text="needle2"))
        assert [h.seq for h in hits] == [seqs[1]]
        assert hits[0].event.message == "a\x00b needle2"  # the record keeps it; the index row cannot
        assert [h.seq for h in store.search_events(EventQuery(text="needle"))] == [seqs[0]]
