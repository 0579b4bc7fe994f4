"""Tenants' instances sending syslog over TLS with a per-project client certificate: real
rsyslog (gtls) relays, one per project, into `stackwatch serve`; every event is tagged with the
certificate's project (whatever the record claims), detection runs per project (the same
attacker against two projects makes one alert in each, the project's), each project reads only
its own through the store's tenant scope, strangers are refused, and one project's flood does
not slow another."""

from __future__ import annotations

import asyncio
import ssl
import time
from pathlib import Path

import pytest

from stackwatch.sources.tenant_syslog import certificate_project
from stackwatch.store import EventQuery, open_store
from stackwatch.store.base import AlertQuery
from stackwatch.store.scope import TENANT_ATTR, Scope
from tests.servetools import (
    Rsyslog,
    ServeProcess,
    free_port,
    logger,
    make_tenant_certs,
    serve_config,
    udp_port_bound,
    wait_for,
)

pytestmark = pytest.mark.integration

ALPHA, BETA = "a1b2c3d4e5f60718293a4b5c6d7e8f90", "0f9e8d7c6b5a49382716f5e4d3c2b1a0"
GAMMA = "c0ffee00c0ffee00"
ATTACKER = "198.51.100.99"


def _relay(in_port: int, port: int, cert: Path, key: Path, ca: Path) -> str:
    return (
        f'module(load="imudp")\ninput(type="imudp" address="127.0.0.1" port="{in_port}")\n'
        f'action(type="omfwd" target="127.0.0.1" port="{port}" protocol="tcp" TCP_Framing="octet-counted"\n'
        f'       StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name"'
        f' StreamDriverPermittedPeers="localhost"\n'
        f'       StreamDriver.CAFile="{ca}" StreamDriver.CertFile="{cert}" StreamDriver.KeyFile="{key}"\n'
        f'       template="RSYSLOG_SyslogProtocol23Format"'
        f' action.resumeRetryCount="-1" queue.type="LinkedList" queue.size="10000")\n'
    )


def _sources(port: int, certs: dict[str, Path], **extra: object) -> str:
    lines = "".join(f"    {k}: {v}\n" for k, v in extra.items())
    return (f"  - type: tenant_syslog\n    name: tenants\n    listen: '127.0.0.1:{port}'\n    tls:\n"
            f"      cert: '{certs['server_cert']}'\n      key: '{certs['server_key']}'\n"
            f"      client_ca: '{certs['ca']}'\n      require_client_cert: true\n"
            f"    projects: [{ALPHA}, {BETA}]\n{lines}")


def test_each_projects_instances_land_tagged_and_scoped_to_it(tmp_path: Path) -> None:
    certs = make_tenant_certs(tmp_path / "tls", [ALPHA, BETA, GAMMA])
    port = free_port()
    config = serve_config(tmp_path, _sources(port, certs))
    serve = ServeProcess(config).start()
    try:
        relays = {}
        for project in (ALPHA, BETA):
            in_port = free_port(2)
            relays[project] = (in_port, Rsyslog(tmp_path / f"rsyslog-{project[:4]}", _relay(
                in_port, port, certs[f"{project}_cert"], certs[f"{project}_key"], certs["ca"])))
        for in_port, rsyslog in relays.values():
            rsyslog.__enter__()
            wait_for(lambda in_port=in_port: udp_port_bound(in_port), 15)
        try:
            # the same attacker against both projects: the test rule (servetools.BRUTE_FORCE_RULE,
            # 10 failures by source address) must see each project's 12 apart
            for in_port, _ in relays.values():
                for _ in range(12):
                    logger(in_port, f"Failed password for root from {ATTACKER} port 4242 ssh2")
            with open_store(tmp_path / "data", read_only=True) as store:
                wait_for(lambda: store.count_events(EventQuery(service="sshd")) >= 24, 20)
                wait_for(lambda: store.count_alerts() >= 2, 20)
        finally:
            for _, rsyslog in relays.values():
                rsyslog.__exit__(None, None, None)
    finally:
        assert serve.stop() == 0, serve.log()
    with open_store(tmp_path / "data") as store:
        for project in (ALPHA, BETA):
            mine = store.search_events(EventQuery(scope=Scope(project), limit=100))
            assert len(mine) == 12
            assert all(e.event.initiator.project == project and e.event.attrs[TENANT_ATTR] == project
                       and e.event.host.startswith(f"tenant/{project}/") for e in mine)
            alerts = store.alerts(AlertQuery(scope=Scope(project)))
            assert [(a.alert.project, a.alert.source_ip) for a in alerts] == [(project, ATTACKER)]
            assert alerts[0].alert.key == f"tenant/{project}|{ATTACKER}"
        assert store.count_alerts(AlertQuery(without_host_prefix="tenant/")) == 0  # none is the nodes'
        assert store.count_alerts() == 2


@pytest.mark.parametrize("who", ["stranger", GAMMA])
def test_a_certificate_of_another_ca_or_project_is_refused(tmp_path: Path, who: str) -> None:
    """GAMMA's certificate is from the right CA but GAMMA is not among the allowed projects."""
    certs = make_tenant_certs(tmp_path / "tls", [ALPHA, BETA, GAMMA])
    port = free_port()
    serve = ServeProcess(serve_config(tmp_path, _sources(port, certs))).start()
    try:
        context = ssl.create_default_context(cafile=str(certs["ca"]))
        context.load_cert_chain(str(certs[f"{who}_cert"]), str(certs[f"{who}_key"]))

        async def send() -> bytes:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context,
                                                               server_hostname="localhost")
                writer.write(b"<38>1 2026-01-01T00:00:00Z vm sshd - - - Failed password for root\n")
                await writer.drain()
                return await asyncio.wait_for(reader.read(100), 5)
            except (ssl.SSLError, ConnectionError):
                return b""

        assert asyncio.run(send()) == b""  # closed without a word
        time.sleep(1.0)
    finally:
        assert serve.stop() == 0, serve.log()
    with open_store(tmp_path / "data") as store:
        assert store.count_events(EventQuery(service="sshd")) == 0


def _tls(certs: dict[str, Path], project: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(certs["ca"]))
    context.load_cert_chain(str(certs[f"{project}_cert"]), str(certs[f"{project}_key"]))
    return context


def test_one_projects_flood_does_not_slow_another_project(tmp_path: Path) -> None:
    certs = make_tenant_certs(tmp_path / "tls", [ALPHA, BETA])
    port = free_port()
    serve = ServeProcess(serve_config(tmp_path, _sources(port, certs, project_rate_limit=5,
                                                         project_burst=5))).start()

    async def send(project: str, count: int) -> None:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=_tls(certs, project),
                                                  server_hostname="localhost")
        writer.write(b"".join(b"<38>1 2026-01-01T00:00:00Z vm%d sshd - - - Accepted publickey for u%d\n"
                              % (n, n) for n in range(count)))
        await writer.drain()
        await asyncio.sleep(3.0)
        writer.close()

    async def both() -> None:
        await asyncio.gather(send(ALPHA, 200), send(BETA, 5))

    try:
        asyncio.run(both())
        with open_store(tmp_path / "data", read_only=True) as store:
            counts = {p: store.count_events(EventQuery(scope=Scope(p))) for p in (ALPHA, BETA)}
    finally:
        assert serve.stop() == 0, serve.log()
    assert counts[BETA] == 5  # all of the quiet project's records, while the other floods
    assert 5 <= counts[ALPHA] <= 5 + 5 * 6  # the flooding project at its own rate (burst + ~5/s)


def test_the_certificates_common_name_is_the_project() -> None:
    assert certificate_project({"subject": ((("commonName", ALPHA),),)}) == ALPHA
    assert certificate_project({"subject": ((("commonName", "a b"),),)}) is None
    assert certificate_project({"subject": ((("organizationName", "x"),),)}) is None
    assert certificate_project(None) is None
