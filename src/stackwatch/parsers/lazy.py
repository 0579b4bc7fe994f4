"""Header events: a record's header now, its full parse when something reads it (issue #16,
item 3).

Every record needs its header on the hot path: time (ordering, windows), host and service
(absence, level drops, the index), severity, kind. The rest of the parse (context blocks,
identities, auditd's key=value fields, WSGI request lines...) is needed only where a rule,
the correlator or the orphan ledger can use it. A parser that can say what a record's header
is, cheaply, offers two more methods (parsers/base.py, ``HeaderParser``); the framing asks
the record gate (detect/prefilter.py builds it from the loaded rules) whether anything can
care, and when nothing can it emits a ``HeaderEvent`` instead of parsing.

A ``HeaderEvent`` is an ``Event`` whose header fields (time, received, host, service,
severity, kind, raw, origin, ref, and message when the parser gives it: ``HEADER_FIELDS``)
are exactly the full parse's; every other field is left at its default. ``complete`` gives
the full events of its record (the parse the framing skipped, with the framing's own error
handling). Anything that reads more than the header (the store's index columns, search,
export) completes first; encoding a HeaderEvent as it is fails loudly (its ``record`` holds
the parser), so a header event never reaches a store or a pipe by mistake.
"""

from __future__ import annotations

from typing import Any, Final

from stackwatch.core.event import Event

HEADER_FIELDS: Final = frozenset(("time", "received", "host", "service", "severity", "kind", "raw", "origin",
                                  "ref"))
"""The fields a header event holds exactly as the full parse would (``message`` too when the
parser's ``header`` gave one: see ``HeaderParser``)."""


class HeaderEvent(Event, frozen=True, kw_only=True, omit_defaults=True):
    """An event with only its header parsed. ``record``: (parser, lines, parse context as it
    was for this record), what ``complete`` parses."""

    record: Any = None


def complete(event: Event) -> list[Event]:
    """The full events of ``event``'s record (``[event]`` for an event already complete).
    The record's parser runs now, as the framing would have run it: a parser that raises or
    finds nothing leaves an ``unparsed`` event, raw kept."""
    if not isinstance(event, HeaderEvent):
        return [event]
    from stackwatch.parsers.base import parse_record

    parser, lines, ctx = event.record
    return parse_record(parser, lines, ctx)[0]


def complete_all(events: list[Event]) -> list[Event]:
    """``events`` with every header event replaced by its full events (the same list when
    none is a header event)."""
    if not any(isinstance(event, HeaderEvent) for event in events):
        return events
    out: list[Event] = []
    for event in events:
        if isinstance(event, HeaderEvent):
            out += complete(event)
        else:
            out.append(event)
    return out
