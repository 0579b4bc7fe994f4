"""The keystone page and API count every attempt of the range, each once: their figures equal a
full recount (every stored login event correlated again) over the seeded store, a store built
by ``analyze`` (tests/store/test_sqlite_attempts.py covers ranges, re-ingestion and the rest).

Here the seeded store is this module's own, once in each record format of the embedded store
(format 2 reads the events back from its blocks) and once on PostgreSQL (``analyze --data
postgresql://...``: the writer correlates as it appends, store/postgres/attempts.py): these
tests, and the keystone page, API and report tests of other modules imported below, run over
all three."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from fastapi.testclient import TestClient

from stackwatch.api import Services
from stackwatch.api.analytics import build_report, login_events, report_dict
from stackwatch.api.settings import LoginRate
from stackwatch.store.sqlite import FORMAT_ENV, stored_format
from tests.api.conftest import make_app, seed, services_over

# Collected again here, over this module's stores (both formats); their own modules run them
# over the session's seeded store.
from tests.api.test_routes import (  # noqa: F401
    test_keystone_analytics_classify_the_scenario,
    test_keystone_export_csv_and_json,
    test_keystone_timelines,
    test_keystone_view_restricted_to_select_accounts,
)
from tests.api.test_time_window import test_the_keystone_page_counts_only_the_windows_failures  # noqa: F401
from tests.cli.test_report import (  # noqa: F401
    test_accounts_restrict_the_report,
    test_json_report,
    test_since_is_counted_back_from_the_newest_event,
    test_text_report_names_attackers_and_targeted_accounts,
)
from tests.pgdb import fresh_database


@pytest.fixture(scope="module", params=[1, 2, "postgresql"], ids=["format1", "format2", "postgresql"])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[tuple[Path, str | None]]:
    """(the data folder, the shared store's URL or None for the folder's own store)."""
    if request.param == "postgresql":
        with fresh_database() as url:
            data = seed(tmp_path_factory.mktemp("keystone-postgresql"), store=url)
            yield data, url
        return
    with pytest.MonkeyPatch.context() as env:  # ``analyze`` creates the store in this format
        env.setenv(FORMAT_ENV, str(request.param))
        data = seed(tmp_path_factory.mktemp(f"keystone-format{request.param}"))
    assert stored_format(data) == request.param
    yield data, None


@pytest.fixture(scope="module")
def seeded_dir(seeded: tuple[Path, str | None]) -> Path | str:
    """What the report tests give ``--data``: the folder, or the shared store's URL."""
    return seeded[1] or seeded[0]


@pytest.fixture(scope="module")
def services(seeded: tuple[Path, str | None]) -> Iterator[Services]:
    services = services_over(*seeded)
    assert services.store.login_attempts() is not None  # the report is summed from the attempts
    yield services
    services.close()


@pytest.fixture(scope="module")
def app(services: Services):  # type: ignore[no-untyped-def]
    return make_app(services, login_rate=LoginRate(per_ip=1000, per_user=1000, window=60))


def _recount(app, **scope: object) -> dict[str, object]:  # type: ignore[no-untyped-def]
    store = app.state.services.store
    events, truncated = login_events(store, None, None, max_events=10_000_000)
    assert not truncated
    report = build_report(events, privileged=app.state.settings.privileged_accounts, **scope)  # type: ignore[arg-type]
    return orjson.loads(orjson.dumps(report_dict(report)))  # as JSON says it (tuples are lists)


def test_the_api_equals_a_full_recount(viewer: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    assert viewer.get("/api/v1/keystone").json() == _recount(app)
    restricted = viewer.get("/api/v1/keystone", params={"accounts": "admin,anna.web"}).json()
    assert restricted == _recount(app, accounts=["admin", "anna.web"])


def test_the_page_shows_the_recounted_totals_and_says_they_are_exact(viewer: TestClient, app) -> None:  # type: ignore[no-untyped-def]
    html = viewer.get("/keystone").text
    totals = _recount(app)["totals"]
    cards = dict((label, int(num)) for num, label in re.findall(
        r'<span class="num">(\d+)</span><span class="lbl">([a-zA-Z ]+)</span>', html))
    assert cards == {"login attempts": totals["attempts"], "failed": totals["failures"],  # type: ignore[index]
                     "succeeded": totals["successes"], "source IPs": totals["source_ips"],  # type: ignore[index]
                     "accounts": totals["accounts"]}  # type: ignore[index]
    assert 'id="exact"' in html and 'id="truncated"' not in html
