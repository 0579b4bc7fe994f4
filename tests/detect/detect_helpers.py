"""Helpers for detection tests: rules from YAML text, events at second offsets."""

from __future__ import annotations

import textwrap
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from stackwatch.core.event import Event
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import load_text
from stackwatch.detect.model import Rule
from stackwatch.testing import make_event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def rule_from_yaml(body: str, **defaults: Any) -> Rule:
    """One rule from YAML; id/title/category/severity filled in when the body omits them."""
    text = textwrap.dedent(body)
    head = {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, text)), "title": "test rule",
            "category": "auth.bruteforce", "severity": "medium", **defaults}
    given = {ln.split(":", 1)[0] for ln in text.splitlines()}
    lines = [f"{k}: {v}" for k, v in head.items() if k not in given]
    rules, errors = load_text("\n".join(lines) + "\n" + text, "test.yaml")
    if errors:
        raise errors[0]
    assert len(rules) == 1
    return rules[0]


def ev(at: float = 0, **fields: Any) -> Event:
    """An event ``at`` seconds after T0 (ref/raw made unique from the time)."""
    fields.setdefault("ref", f"t+{at}")
    fields.setdefault("raw", f"raw line at t+{at}")
    return make_event(time=T0 + timedelta(seconds=at), **fields)


def run(rule: Rule | list[Rule], events: list[Event], **engine_options: Any) -> Engine:
    engine = Engine(rule if isinstance(rule, list) else [rule], **engine_options)
    for event in events:
        engine.process(event)
    engine.finish()
    return engine


def failure(at: float, ip: str = "203.0.113.7", name: str | None = None, **extra: Any) -> Event:
    """A keystone login failure from an IP, as the keystone.log line gives it."""
    initiator = {"source_ip": ip, **({"name": name} if name else {})}
    extra.setdefault("kind", "oslo_log")
    return ev(at, service="keystone", action="authenticate", outcome="failure", initiator=initiator, **extra)
