"""/api/v1/usage over the seeded demo store: the leaked credential's project is the top mover
with its usage alerts, the steady CI project creates the most over time and has none, the
inventory comes from the orphan ledger replay, and a project's timeline is given on request."""

from __future__ import annotations

from fastapi.testclient import TestClient

from stackwatch.scenario import attacks_usage
from stackwatch.scenario.world import World

IDS = {p.name: p.id for p in World.build(7, 0).projects}


def test_usage_needs_a_login(anon: TestClient) -> None:
    assert anon.get("/api/v1/usage").status_code == 401


def test_the_leaked_project_is_the_top_mover(viewer: TestClient) -> None:
    body = viewer.get("/api/v1/usage").json()
    top = body["movers"][0]
    assert top["project"] == IDS["ml-training"]
    assert top["recent"] >= attacks_usage.LAUNCHES
    assert top["ratio"] > 10
    assert top["alerts"] >= 4
    assert top["alive"]["instance"] >= attacks_usage.LAUNCHES  # nothing deleted them


def test_the_ci_project_is_busy_steady_and_quiet(viewer: TestClient) -> None:
    rows = {row["project"]: row for row in viewer.get("/api/v1/usage").json()["projects"]}
    ci = rows[IDS["ci-runners"]]
    assert ci["created"]["instance"] >= 10  # 200 a day over the 2 h scenario
    assert ci["alive"].get("instance", 0) <= 2  # each deleted minutes later (ledger replay)
    assert ci["alerts"] == 0
    assert ci["ratio"] < 2


def test_one_projects_timeline(viewer: TestClient) -> None:
    body = viewer.get("/api/v1/usage", params={"project": IDS["ml-training"]}).json()
    per_bucket = body["project"]["created"]["instance"]
    assert len(per_bucket) == len(body["timeline"]["times"])
    assert sum(per_bucket) == body["movers"][0]["created"]["instance"]


def test_a_range_with_no_notifications_is_empty(viewer: TestClient) -> None:
    body = viewer.get("/api/v1/usage", params={"since": "2020-01-01T00:00:00Z",
                                               "until": "2020-01-02T00:00:00Z"}).json()
    assert body["projects"] == [] and body["movers"] == []


def test_the_page_renders_for_a_viewer(viewer: TestClient) -> None:
    page = viewer.get("/usage")
    assert page.status_code == 200
    assert IDS["ml-training"] in page.text and "Top movers" in page.text
