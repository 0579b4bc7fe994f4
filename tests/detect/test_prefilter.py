"""The record prefilter (detect/prefilter.py) and header events (parsers/lazy.py) change no
alert: the alert JSON is identical to the full-parse path over the benchmark's generated
corpus, the demo scenario, the shared real-world corpus (STACKWATCH_CORPUS), with the
built-in packs alone and with the Sigma test rules added, and over every rule vector given
as log lines (with an engine holding only that rule: the most a prefilter can leave out).
Every header event completes to exactly the event the full parse gives, with equal header
fields. Under STACKWATCH_PURE_PYTHON=1 (`.ci/run`) the same runs cover the pure path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import msgspec
import pytest

from stackwatch.core.alert import Alert, alert_to_dict
from stackwatch.core.event import Event, field_value, to_json
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules
from stackwatch.detect.prefilter import Prefilter, prefilter_for
from stackwatch.detect.vectors import rule_cases, run_case
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import Framer
from stackwatch.parsers.lazy import HEADER_FIELDS, HeaderEvent, complete, complete_all
from stackwatch.pipeline.analyze import analyze
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.reader import discover, read_event_batches
from stackwatch.testing import make_event

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("STACKWATCH_CORPUS", ROOT.parent / "shared" / "corpus"))
SIGMA = Path(__file__).resolve().parent / "sigma_rules"
RECEIVED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _alerts(alerts: list[Alert]) -> list[str]:
    return [json.dumps(alert_to_dict(alert), sort_keys=True, default=str) for alert in alerts]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from stackwatch.scenario import demo_dataset, generate

    root = tmp_path_factory.mktemp("prefilter")
    bench = root / "bench"
    generate(bench, seed=7, lines=20_000)  # the benchmark's generator, as tests/test_accel.py
    folders = [bench, demo_dataset(root / "demo")]
    if SHARED.is_dir():
        folders.append(SHARED)
    return folders


def _analyze(folder: Path, *, prefilter: bool, sigma: bool) -> tuple[list[str], int]:
    engine = build_engine([SIGMA] if sigma else None, report=None)
    result = analyze(discover([str(folder)]), engine=engine, prefilter=prefilter, received=RECEIVED)
    return _alerts(result.alerts), result.progress.stats.events


@pytest.mark.parametrize("sigma", [False, True], ids=["builtin", "builtin+sigma"])
def test_alerts_are_identical_to_the_full_parse_over_every_corpus(corpora: list[Path], sigma: bool) -> None:
    for folder in corpora:
        full, events = _analyze(folder, prefilter=False, sigma=sigma)
        lazy, lazy_events = _analyze(folder, prefilter=True, sigma=sigma)
        assert lazy == full, folder
        assert lazy_events == events > 1000
    demo = _analyze(corpora[1], prefilter=True, sigma=sigma)[0]
    assert len(demo) > 10  # the demo's attacks were detected with header events about


def _header_runs(folder: Path, gate: Prefilter) -> Iterator[tuple[Event, Event]]:
    """(header or full event, the same record's full event), record by record."""
    full = chain.from_iterable(read_event_batches(discover([str(folder)]), received=RECEIVED))
    lazy = read_event_batches(discover([str(folder)]), received=RECEIVED, gate=gate)
    for event in chain.from_iterable(lazy):
        yield event, next(full)
    assert next(full, None) is None


def test_every_header_event_completes_to_the_full_parse_with_equal_header_fields(corpora: list[Path]) -> None:
    # an engine with no rule but the login correlator: the most records become header events
    gate = prefilter_for(Engine([]))
    assert gate is not None
    headers = 0
    for folder in corpora:
        for event, full in _header_runs(folder, gate):
            if not isinstance(event, HeaderEvent):
                assert to_json(event) == to_json(full)
                continue
            headers += 1
            assert complete(event) == [full]
            for name in HEADER_FIELDS:
                assert getattr(event, name) == getattr(full, name), (name, full.ref)
            parser, lines, ctx = event.record
            kind, service, message, actions, known = parser.header(lines, ctx)  # the HeaderParser contract
            assert (kind, service) == (full.kind, full.service)
            assert message is None or message == full.message == event.message
            assert full.action is None or full.action in actions
            for path, value in known:
                assert field_value(full, path) == value, (path, full.ref)
    assert headers > 1000  # auditd records (the corpora hold about 1,700)


LINE_RULES = [rule for rule in builtin_rules().rules if any("lines" in c.spec for c in rule_cases(rule))]


@pytest.mark.parametrize("rule", LINE_RULES, ids=lambda rule: Path(rule.source).stem)
def test_every_rule_vector_of_log_lines_alerts_the_same_through_header_events(rule: object) -> None:
    for case in rule_cases(rule):  # type: ignore[arg-type]
        spec = case.spec
        if "lines" not in spec:
            continue
        expected = _alerts(run_case(case))
        engine = Engine([case.rule], maintenance=spec.get("maintenance"),
                        expected_sources=spec.get("expected_sources"))
        gate = prefilter_for(engine)
        assert gate is not None
        framer = Framer(ParseContext(host=str(spec.get("host", "")), origin="vector", year=spec.get("year")),
                        ref_prefix="vector", gate=gate)
        text = str(spec["lines"])
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        events = [*framer.feed_lines([line.rstrip("\r") for line in lines], 1), *framer.flush()]
        for event in events:
            engine.process(event)
        engine.finish()
        if "advance" in spec and events:
            from datetime import timedelta

            from stackwatch.detect.model import parse_duration

            last = max(e.time for e in events)
            advance = parse_duration(spec["advance"], case.rule.source, case.line)
            engine.tick(last + timedelta(seconds=advance))
        assert _alerts(engine.alerts()) == expected, case


# ---------------------------------------------------------------- the gate's decisions


def _rules(text: str) -> Engine:
    from stackwatch.detect.loader import load_rules

    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"prefilter-{os.getpid()}-{abs(hash(text))}.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        rules = load_rules([path])
    finally:
        path.unlink()
    assert not rules.errors, rules.errors
    return Engine(rules.rules, correlate=False)


_QUOTA = """
id: 6a1f0d3e-1111-4c6b-9e8e-0a1b2c3d4e5f
title: quota
category: usage.anomaly
severity: low
kind: threshold
condition:
  kind: [oslo_log, syslog]
  message: {contains: [Quota exceeded, OverQuota]}
group_by: [initiator.project]
threshold: 2
window: 10m
"""

_AUDIT = """
id: 6a1f0d3e-2222-4c6b-9e8e-0a1b2c3d4e5f
title: audit failures
category: auth.bruteforce
severity: low
kind: match
condition:
  service: auditd
  outcome: failure
  attrs.type: [USER_AUTH, USER_ERR]
"""


def test_a_message_literal_gates_the_full_parse() -> None:
    gate = prefilter_for(_rules(_QUOTA))
    assert gate is not None
    assert gate("oslo_log", "nova-api", "HTTP exception thrown: Quota exceeded for instances", frozenset())
    assert not gate("oslo_log", "nova-api", "Instance spawned successfully", frozenset())
    assert gate("oslo_log", "nova-api", None, frozenset())  # no message from the header: parse
    assert not gate("auditd", "auditd", None, frozenset())  # a kind the rule does not take


def test_a_known_field_excludes_a_rule_whose_condition_it_fails() -> None:
    gate = prefilter_for(_rules(_AUDIT))
    assert gate is not None
    assert not gate("auditd", "auditd", None, frozenset(), (("attrs.type", "USER_START"),))
    assert gate("auditd", "auditd", None, frozenset(), (("attrs.type", "USER_AUTH"),))
    assert gate("auditd", "auditd", None, frozenset())  # the type unknown: the outcome decides


def test_actions_the_rules_or_the_correlator_want_are_parsed() -> None:
    gate = prefilter_for(Engine(builtin_rules().rules))
    assert gate is not None
    assert gate("auditd", "auditd", None, frozenset({"authenticate"}))  # the login correlator's
    assert gate("auditd", "auditd", None, frozenset({"process.exec"}))
    assert not gate("auditd", "auditd", None, frozenset({"session.close"}), (("attrs.type", "USER_END"),))
    assert prefilter_for(object()) is None  # an engine it does not know the inside of: no gate


def test_a_header_event_never_encodes_as_it_is_and_completes_on_demand() -> None:
    ctx = ParseContext(host="cmp1", origin="file:/x", received=RECEIVED)
    framer = Framer(ctx, "x", gate=prefilter_for(Engine([])))
    line = ("type=USER_END msg=audit(1772438473.096:812): pid=4242 uid=0 auid=0 ses=7 "
            "msg='op=PAM:session_close acct=\"root\" exe=\"/usr/sbin/cron\" hostname=? addr=? "
            "terminal=cron res=success'")
    header, = [*framer.feed(line, 1), *framer.flush()]
    assert isinstance(header, HeaderEvent)
    assert (header.kind, header.host, header.ref, header.raw) == ("auditd", "cmp1", "x:1", line)
    with pytest.raises(TypeError):
        to_json(header)  # it carries its parser: it never reaches a store or a pipe by mistake
    full, = complete(header)
    assert type(full) is Event
    assert (full.action, full.outcome, full.attrs["exe"]) == ("session.close", "success", "/usr/sbin/cron")
    assert msgspec.json.decode(to_json(full))["time"] == to_json(header.time).decode().strip('"')
    plain = make_event(message="x")
    assert complete(plain) == [plain]
    assert complete_all([plain, header]) == [plain, full]


def test_a_store_that_takes_header_events_completes_them_to_what_the_full_parse_stores(
        corpora: list[Path], tmp_path: Path) -> None:
    """The API the store's redesign can use: a store with ``takes_header_events`` is given
    header events and completes them (here at append: ``complete_all``); what it stores is
    what the full parse stores, and the alerts are the same."""
    from stackwatch.store import open_store

    def run(data: Path, lazy: bool) -> tuple[list[str], list[bytes], int]:
        store = open_store(str(data))
        seen = [0]
        if lazy:
            append = store.append_events

            def completing(events: list[Event]) -> list[int]:
                seen[0] += sum(isinstance(event, HeaderEvent) for event in events)
                return append(complete_all(events))

            store.takes_header_events = True  # type: ignore[attr-defined]
            store.append_events = completing  # type: ignore[method-assign]
        try:
            result = analyze(discover([str(corpora[1])]), engine=build_engine(report=None), store=store,
                             received=RECEIVED)
            stored = [msgspec.json.encode(item.event)
                      for first in range(1, result.stored + 1, 10_000)
                      for item in store.get_events(range(first, min(first + 10_000, result.stored + 1)))]
        finally:
            store.close()
        return _alerts(result.alerts), stored, seen[0]

    full_alerts, full_stored, _ = run(tmp_path / "full", lazy=False)
    lazy_alerts, lazy_stored, headers = run(tmp_path / "lazy", lazy=True)
    assert headers > 100  # the demo's audit.log records came as header events
    assert lazy_alerts == full_alerts
    assert lazy_stored == full_stored and len(full_stored) > 1000
