"""Full text on PostgreSQL: a ``tsvector`` per event, a ``tsquery`` per search, both built here.

A word is what the embedded store's FTS5 tokenizer calls one: a run of letters and digits,
case-folded (``[^\\W_]+``; ``10.0.0.1`` is the four words 10 0 0 1). PostgreSQL's own parsers
split differently (``10.0.0.1`` is one "host" token, ``req-ab12`` three), so the writer makes
the vector itself (``'word':positions`` text, parsed by PostgreSQL's tsvector input) and a
search makes a phrase query of the same words: the same text finds the same events on either
backend. A vector holds at most MAX_WORDS positions (PostgreSQL's limit is 16383) and no word
longer than MAX_WORD bytes; words past that are not searchable (logged lines are far shorter).
Measured against pg_trgm (trigram GIN over the message): see docs/store-postgres.md.
"""

from __future__ import annotations

import re
from typing import Final

MAX_WORDS: Final = 16_000
MAX_WORD: Final = 256  # bytes (PostgreSQL refuses a lexeme of 2 KiB or more)
_WORD: Final = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def vector(message: str) -> str:
    """The ``tsvector`` input text of ``message``'s words with their positions (1-based).
    A word met again is written again with its new position: PostgreSQL merges them (measured:
    twice as fast as merging here, the writer's largest cost per event)."""
    found = _WORD.findall(message.lower())
    if len(found) > MAX_WORDS:
        del found[MAX_WORDS:]
    if found and max(map(len, found)) > 64:  # 64 characters are at most 256 bytes: else all fit
        return " ".join([f"{w}:{n}" for n, w in enumerate(found, 1) if len(w.encode()) <= MAX_WORD])
    return " ".join([f"{w}:{n}" for n, w in enumerate(found, 1)])


def phrase(text: str, *, prefix: bool = False) -> str | None:
    """A ``tsquery`` matching ``text``'s words next to each other (the last as a prefix when
    ``prefix``); None when it has no word. Words are letters and digits only: nothing in them
    is tsquery syntax, but each is quoted anyway."""
    found = [w for w in words(text) if len(w.encode()) <= MAX_WORD]
    if not found:
        return None
    terms = [f"'{w}'" for w in found]
    if prefix:
        terms[-1] += ":*"
    return "(" + " <-> ".join(terms) + ")"


def free_text(text: str) -> str | None:
    """EventQuery.text: every whitespace-separated chunk must occur (its words as a phrase).
    None when no chunk has a word (the query matches nothing)."""
    parts = [p for p in (phrase(chunk) for chunk in text.replace("\x00", " ").split()) if p]
    return " & ".join(parts) if parts else None
