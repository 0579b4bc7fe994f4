"""Re-parsing a raw-only record gives its record bytes back, byte for byte (store/reparse.py).

Every input the pipeline parses is read the way it reads it (file framing, a live source's
message decoder, the AMQP source's own ``decode``), each event captured with its record's raw
bytes and the header a raw-only record would hold; re-parsing must give the format 2 record
bytes the store writes for the event (``records.record_bytes`` / ``narrow.NarrowEncoder``).
The lean header (no parse context: default host and service, year hint, last time) must do
as well: that is the header the next record format needs. Negative checks prove the
comparison can fail.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from benchmarks.synthetic import write_cadf

from stackwatch.scenario import generate
from stackwatch.sources.base import Record
from stackwatch.store import reparse_check as rc
from stackwatch.store.reparse import ReparseError, reparse
from stackwatch.testing import load_parser_vectors

VECTORS = load_parser_vectors()


def _exact(items: list[rc.Captured]) -> None:
    assert items
    assert rc.differences(items) == []
    assert rc.differences(items, rc.lean) == []


def _vectors() -> list[rc.Captured]:
    items: list[rc.Captured] = []
    for vector in VECTORS:
        items += rc.capture_text(vector.input, host=vector.host, origin="vector", year=vector.year)
    return items


def test_every_parser_vector_reparses_exactly() -> None:
    items = _vectors()
    parsers = {item.header.parser for item in items}
    assert {"syslog", "auditd", "oslo_log", "json", "aide", "httpd_access", ""} <= parsers
    assert sum(item.header.nth > 0 for item in items) > 0  # multi-event records are covered
    _exact(items)
    # the stream's parser is found again by sniffing the record alone: the header need not name it
    assert [d for d in (rc.differ(i, rc.sniffed(rc.lean(i.header), i.raw)) for i in items) if d] == []


def test_every_parser_vector_as_one_live_message_reparses_exactly() -> None:
    records = [Record(v.input.strip("\n"), 1_765_100_000.0 + n, f"10.0.0.{n % 7}")
               for n, v in enumerate(VECTORS)]
    items = list(rc.capture_messages(records, "syslog:tcp"))
    assert any(item.header.ref.endswith("/line:0") for item in items)  # multi-line records in one frame
    _exact(items)


def test_the_shared_corpus_reparses_exactly(corpus: Path) -> None:
    items = list(rc.capture_inputs([str(corpus)]))
    assert len(items) > 20_000
    _exact(items)


def test_the_demo_scenario_reparses_exactly_and_encodes_to_the_same_records(tmp_path: Path) -> None:
    generate(tmp_path / "demo", seed=7, lines=8_000)
    items = list(rc.capture_inputs([str(tmp_path / "demo")]))
    assert Counter(item.header.parser for item in items).keys() >= {"oslo_log", "syslog", "json", "auditd"}
    _exact(items)
    # the write path's own encoder (narrow.NarrowEncoder) gives the same records for both
    again = [reparse(item.raw, rc.lean(item.header)) for item in items]
    assert _encoded(again) == _encoded([item.event for item in items])


def _encoded(events: list) -> list[bytes]:
    return rc.writer_records(events)


def test_the_benchmark_generators_cadf_reparses_exactly(tmp_path: Path) -> None:
    write_cadf(tmp_path / "ctl1" / "notifications.json", 2_000, seed=7)
    _exact(list(rc.capture_inputs([str(tmp_path)])))


def test_live_messages_peer_hosts_truncation_and_unparsed_reparse_exactly() -> None:
    lines = [v.input.strip("\n") for v in VECTORS if "\n" not in v.input.strip("\n")]
    odd = ["", "garbage \udcff line", "x" * 70_000, "<34>1 2026-12-07T10:00:00Z h app - - - hello"]
    records = [Record(t, 1_765_100_000.0 + n, f"10.0.1.{n % 5}") for n, t in enumerate(lines + odd)]
    records += [Record(t[:70], 1_765_100_000.0, "10.9.9.9", None, len(t)) for t in lines[:30] if len(t) > 70]
    items = list(rc.capture_messages(records, "syslog:udp"))
    assert sum(bool(item.header.truncated) for item in items) >= 10
    _exact(items)
    # a live source says "no parser recognised" where the file reader says "oversize"
    assert rc.differences(items, lambda h: h._replace(live=False))


def test_amqp_notifications_reparse_exactly(tmp_path: Path, corpus: Path) -> None:
    path = write_cadf(tmp_path / "n.json", 300, seed=3)
    bodies = path.read_text().splitlines()
    bodies += [p.read_text() for p in sorted((corpus / "notifications").rglob("*.json"))[:40]]
    bodies += ["not json", "{}", '{"oslo.message": "{bad"}']
    records = [Record(t, 1_765_100_000.0 + n, "nova" if n % 2 else "") for n, t in enumerate(bodies)]
    records += [Record(t[:100], 1_765_100_000.0, "keystone", None, len(t)) for t in bodies[:5]]
    items = list(rc.capture_amqp(records, host="ctl1"))
    assert Counter(item.event.kind for item in items)["unparsed"] >= 8
    _exact(items)


def test_a_clamped_future_time_needs_its_flag(corpus: Path) -> None:
    past = datetime(2000, 1, 1, tzinfo=UTC)  # every record is in the future of this receive time
    items = list(rc.clamped(rc.capture_inputs([str(corpus / "openstack")], received=past)))
    clamped = sum(item.header.clamped for item in items)
    assert clamped >= 2_000  # the records without a time of their own are not ahead of it
    _exact(items)
    assert len(rc.differences(items, lambda h: h._replace(clamped=False))) == clamped


def test_a_wrong_header_is_caught() -> None:
    items = _vectors()
    swap = {"syslog": "oslo_log"}
    wrong = rc.differences(items, lambda h: h._replace(parser=swap.get(h.parser, "syslog")))
    assert len(wrong) > len(items) // 2
    item = next(i for i in items if i.header.nth == 0 and i.header.parser == "aide")
    with pytest.raises(ReparseError):
        reparse(item.raw, item.header._replace(nth=99))
