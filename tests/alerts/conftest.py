"""Alerts used by the sink tests."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.core.alert import Alert, Evidence


@pytest.fixture
def alert() -> Alert:
    now = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)
    return Alert(
        rule="5d0c3a52-1f6e-4c1e-9a55-0d7c2b9f0a01",
        title="SSH brute force",
        category="auth.bruteforce",
        severity="high",
        time=now,
        last_seen=now,
        key="203.0.113.9",
        host="ctl1",
        summary="12 failed ssh logins from 203.0.113.9",
        source_ip="203.0.113.9",
        count=1,
        evidence=[Evidence(ref="syslog:tcp/x:1", raw="<38>... Failed password for root", time=now)],
    )
