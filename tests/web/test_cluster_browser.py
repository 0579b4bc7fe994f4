"""The dashboard's Cluster page in headless Chromium, over real cluster processes on a real
RabbitMQ: a collector and an analyzer (`serve --role ...`) are listed with the partitions the
analyzer owns, read from the broker by the code of `stackwatch cluster status`; the page and its
API need a login like every route; without a cluster section, or with the broker unreachable,
the page says so. Screenshot: test-artifacts/cluster.png."""

from __future__ import annotations

import dataclasses
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from stackwatch.api import WebSettings, create_app
from stackwatch.api.settings import LoginRate
from stackwatch.config.settings import ClusterSettings
from tests.cluster.clustertools import (
    AnalyzerProcess,
    CollectorProcess,
    Consumer,
    collector_config,
    unique_cluster,
)
from tests.cluster.test_cluster_status import ENV, _analyzer_config, _send
from tests.servetools import free_port
from tests.web.conftest import serving, shot
from tests.web.test_browser import log_in

pytestmark = pytest.mark.integration


def _app(services, cluster: ClusterSettings):  # type: ignore[no-untyped-def]
    settings = WebSettings(login_rate=LoginRate(per_ip=1000, per_user=1000, window=60))
    return create_app(dataclasses.replace(settings, cluster=cluster), services)


def test_cluster_page_lists_collectors_analyzers_and_partitions(browser, services, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    name = unique_cluster()
    tcp = free_port()
    collector = CollectorProcess(
        collector_config(
            tmp_path / "c",
            name,
            f"  - {{type: syslog_tcp, name: tcp, listen: '127.0.0.1:{tcp}'}}\n",
            partitions=2,
            buckets=16,
            hostname="coll1",
        ),
        ENV,
    )
    analyzer = AnalyzerProcess(_analyzer_config(tmp_path, name, "a", free_port()), "0", "a", env=ENV,
                               started=False)
    cluster = ClusterSettings(name=name, amqp_url="amqp://guest@127.0.0.1:5672/", partitions=2, buckets=16)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    try:
        collector.start()
        analyzer.start()
        time.sleep(2.5)  # the analyzer subscribed to partition 1 too (as its standby first)
        _send(tcp, 200, "web")
        with serving(_app(services, cluster)) as url:
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url + "/api/v1/cluster", timeout=10)
            assert refused.value.code == 401
            page.goto(url + "/cluster")
            assert "/login" in page.url  # the page needs a login too
            log_in(page, url, "vic")
            deadline = time.monotonic() + 40
            while True:
                page.goto(url + "/cluster")
                owners = page.locator("#cluster-partitions td.owner").all_text_contents()
                if owners == ["a", "a"] or time.monotonic() > deadline:
                    break
                time.sleep(1)
            assert owners == ["a", "a"], page.content()
            assert page.locator("#cluster-analyzers tr[data-member=a] td.active").text_content() == "0, 1"
            assert page.locator("#cluster-collectors tr[data-member=coll1]").count() == 1
            assert (
                int(page.locator("#cluster-collectors tr[data-member=coll1] td.events").text_content() or 0)
                >= 200
            )
            assert page.locator("#cluster-problems").count() == 0
            assert page.locator("nav a[href='/cluster']").count() == 1
            shot(page, "cluster")
            api = page.request.get(url + "/api/v1/cluster").json()
            assert [p["owner"] for p in api["partitions"]] == ["a", "a"] and api["problems"] == []
    finally:
        context.close()
        analyzer.kill()
        collector.kill()
        with Consumer(name, partitions=2):  # deletes the cluster's topology on exit
            pass


def test_cluster_page_without_a_cluster_or_a_broker(browser, server: str, services) -> None:  # type: ignore[no-untyped-def]
    context = browser.new_context()
    page = context.new_page()
    try:
        log_in(page, server, "vic")
        page.goto(server + "/cluster")
        assert "No cluster configured" in (page.locator("main").text_content() or page.content())
        unreachable = ClusterSettings(
            name=unique_cluster(), amqp_url=f"amqp://guest@127.0.0.1:{free_port()}/"
        )
        with serving(_app(services, unreachable)) as url:
            log_in(page, url, "vic")
            page.goto(url + "/cluster")
            assert "cannot read the cluster" in (page.locator("#cluster-error").text_content() or "")
    finally:
        context.close()
