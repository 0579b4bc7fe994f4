"""Operators' views leave tenants' own instances out: once events arrive from tenants
(sources/tenant_syslog.py, hosts under ``tenant/``), lists, searches, counts and charts of the
infrastructure hide them and the alerts raised on them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services
from stackwatch.core.alert import Alert
from stackwatch.sources.tenant_syslog import tag
from stackwatch.testing import make_event
from tests.api.conftest import logged_in, make_app, services_over

T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
PROJECT = "0123456789abcdef0123456789abcdef"


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    data: Path = tmp_path_factory.mktemp("mixed") / "data"
    services = services_over(data)
    node = make_event(time=T0, host="ctl-1", service="sshd", kind="syslog",
                      message="NODE-EVENT on a controller")
    tenant = tag(make_event(time=T0 + timedelta(minutes=1), host="vm-7", service="clamd", kind="syslog",
                            message="TENANT-EVENT virus found on an instance"), PROJECT)
    services.store.append_events([node, tenant])
    services.store.upsert_alerts([
        Alert(rule="r-node", title="NODE-ALERT", category="t", severity="high", time=T0, last_seen=T0,
              key="ctl-1", host="ctl-1"),
        Alert(rule="r-tenant", title="TENANT-ALERT", category="t", severity="high", time=T0, last_seen=T0,
              key="vm-7", host=tenant.host, project=PROJECT),
    ])
    services.store.flush()
    yield services
    services.close()


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/search?q=*", "/search?q=*", "/api/v1/alerts",
                                  "/alerts", "/", "/api/v1/sources", "/sources", "/api/v1/overview"])
def test_the_infrastructure_views_leave_tenants_instances_out(mixed: Services, path: str) -> None:
    with logged_in(make_app(mixed), "vic") as viewer:
        text = viewer.get(path).text
    assert "TENANT-" not in text and PROJECT not in text
    if path not in ("/api/v1/sources", "/sources", "/api/v1/overview"):
        assert "NODE-" in text


def test_the_store_itself_still_holds_them(mixed: Services) -> None:
    from stackwatch.store.base import AlertQuery, EventQuery
    from stackwatch.store.scope import Scope

    assert [s.event.message for s in mixed.store.search_events(EventQuery(scope=Scope(PROJECT)))] == [
        "TENANT-EVENT virus found on an instance"]
    assert [a.alert.title for a in mixed.store.alerts(AlertQuery(scope=Scope(PROJECT)))] == ["TENANT-ALERT"]


def test_an_api_token_sees_the_same_infrastructure_view(mixed: Services) -> None:
    token = mixed.users.create_token("vic", "tests")[0]
    with TestClient(make_app(mixed)) as client:
        body = client.get("/api/v1/events", headers={"Authorization": f"Bearer {token}"}).text
    assert "NODE-EVENT" in body and "TENANT-EVENT" not in body
