"""The sources page and API: a text filter over host and service, grouping by host or by
service."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient


def test_the_api_filters_by_text(viewer: TestClient) -> None:
    sources = viewer.get("/api/v1/sources", params={"q": "ctl1 keyst"}).json()["sources"]
    assert sources and all(s["host"] == "ctl1" and "keyst" in s["service"] for s in sources)


def test_the_page_filters_by_text(viewer: TestClient) -> None:
    page = viewer.get("/sources", params={"q": "cmp2"}).text
    hosts = set(re.findall(r"<tr[^>]*>\s*<td>([^<]+)</td><td>", page))
    assert hosts == {"cmp2"}


def test_a_filter_that_matches_nothing_says_so(viewer: TestClient) -> None:
    page = viewer.get("/sources", params={"q": "no-such-host"}).text
    assert "No sources match." in page and "0 sources" in page


@pytest.mark.parametrize("by", ["host", "service"])
def test_the_page_groups_by_host_or_service(viewer: TestClient, by: str) -> None:
    page = viewer.get("/sources", params={"group": by}).text
    groups = re.findall(r'<tbody class="source-group" data-group="([^"]+)">', page)
    assert len(groups) > 1 and groups == sorted(groups)
    column = 0 if by == "host" else 1
    for name, body in re.findall(r'data-group="([^"]+)">(.*?)</tbody>', page, re.S):
        cells = re.findall(r"<tr[^>]*>\s*<td>([^<]+)</td><td>([^<]+)</td>", body)
        assert cells and {c[column] for c in cells} == {name}


def test_an_unknown_grouping_is_refused(viewer: TestClient) -> None:
    assert viewer.get("/sources", params={"group": "project"}).status_code == 400
