"""The keystone, identity, logging (and sshd auth) packs against real data: the generated
multi-host scenario and its manifest, the benign scenario, the real loghub samples, and a
keystone login written three times (Apache, keystone.log, CADF) read from files the way
``stackwatch analyze`` reads them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stackwatch.core.alert import Alert
from stackwatch.detect.engine import Engine
from stackwatch.detect.loader import builtin_rules
from stackwatch.detect.model import Rule
from stackwatch.parsers.framing import parse_text
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.reader import discover, read_events
from stackwatch.scenario import generate
from stackwatch.scenario.manifest import Incident, Manifest
from stackwatch.testing import make_event

PACKS = ("keystone", "identity", "logging", "auth")
ALL_RULES = builtin_rules()
OURS = [r for r in ALL_RULES if r.source.split("/")[1] in PACKS]
OUR_IDS = {r.id for r in OURS}


def ours(category_prefixes: Iterable[str] = ("auth.", "logging.", "identity.")) -> list[Rule]:
    return [r for r in OURS if r.category.startswith(tuple(category_prefixes))]


def rule(file: str) -> Rule:
    [found] = [r for r in OURS if r.source.endswith(file)]
    return found


def run(rules: list[Rule], events: Iterable, **options: object) -> list[Alert]:
    engine = Engine(rules, **options)  # type: ignore[arg-type]
    for event in events:
        engine.process(event)
    engine.finish()
    return engine.alerts()


def analyze_dir(root: Path) -> list[Alert]:
    """The built-in packs over a directory, as `stackwatch analyze` runs them."""
    engine = build_engine(report=io.StringIO())
    for event in read_events(discover([str(root)])):
        engine.process(event)
    engine.finish()
    return engine.alerts()


# ------------------------------------------------------------------ the packs load


def test_the_packs_load_with_unique_ids_and_every_rule_has_vectors() -> None:
    assert [str(e) for e in ALL_RULES.errors] == []
    assert len(OURS) == 24  # auth: + SSH spraying, SSH brute force seen only through auditd
    for r in OURS:
        assert r.tests and r.tests.get("fire") and r.tests.get("quiet"), r.where


# ------------------------------------------------------------------ the generated scenario


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, list[Alert]]:
    out = tmp_path_factory.mktemp("kil-scenario") / "logs"
    manifest = generate(out, seed=7)
    return manifest, analyze_dir(out)


def _file_hosts(incident: Incident) -> set[str]:
    return {path.split("/", 1)[0] for path in incident.files} | {incident.host}


def _matches(alert: Alert, incident: Incident) -> bool:
    if alert.category != incident.category:
        return False
    if incident.entity not in (alert.source_ip, alert.user, alert.project, alert.service):
        return False
    if incident.category == "auth.targeted_account":
        # attacked through every controller: the alert names the controller that crossed the line
        return alert.host in _file_hosts(incident)
    return alert.host == incident.host


def test_every_scenario_incident_of_our_categories_raises_an_alert(scenario) -> None:
    manifest, alerts = scenario
    mine = [a for a in alerts if a.rule in OUR_IDS]
    wanted = [i for i in manifest.incidents
              if i.category.startswith(("auth.", "logging.")) or i.category == "identity.orphaned_resources"]
    assert len(wanted) == 9
    missed = [f"{i.category} {i.host} {i.entity}" for i in wanted if not any(_matches(a, i) for a in mine)]
    assert missed == []
    # time-driven alerts (silence, level lowered) carry evidence too: the source's last
    # record, the warnings written since the last INFO line
    assert all(a.evidence for a in mine)
    [silent] = [a for a in mine if a.category == "logging.silence"]
    assert silent.evidence[0].ref.startswith("cmp3/nova-compute.log:")


def test_scenario_alerts_of_our_packs_all_point_at_an_incident(scenario) -> None:
    """No stray alert: each alert of our packs is about an attack of the manifest (a brute
    force against one account may also raise that account's targeted-account alert)."""
    manifest, alerts = scenario
    entities = {i.entity for i in manifest.incidents}
    hosts = {h for i in manifest.incidents for h in _file_hosts(i)}
    mine = [a for a in alerts if a.rule in OUR_IDS]
    assert len(mine) == 11
    attacked_accounts = {"anna.web"}  # the brute-force victim (manifest names the attacker's IP)
    for alert in mine:
        assert alert.host in hosts
        named = {alert.source_ip, alert.user, alert.project, alert.service}
        assert named & (entities | attacked_accounts), alert


def test_the_correlator_keeps_three_copies_of_each_scenario_attempt_from_counting_thrice(scenario) -> None:
    _, alerts = scenario
    [success] = [a for a in alerts if a.category == "auth.success_after_failures"]
    assert success.details["events"] == 9  # 8 failures + the 201, not 8 x 3 + 1
    [lockout] = [a for a in alerts if a.category == "auth.lockout"]
    assert lockout.user == "kofi.ci" and lockout.count == 2  # the 2 refused attempts, 6 records


@pytest.fixture(scope="module")
def benign_alerts(tmp_path_factory: pytest.TempPathFactory) -> list[Alert]:
    out = tmp_path_factory.mktemp("kil-benign") / "logs"
    generate(out, seed=7, attacks=False)
    return analyze_dir(out)


def test_benign_scenario_raises_nothing_from_our_packs(benign_alerts) -> None:
    assert [a.summary for a in benign_alerts if a.rule in OUR_IDS] == []


# ------------------------------------------------------------------ real corpus logs


def test_loghub_openstack_sample_raises_no_alert_from_our_packs(corpus: Path) -> None:
    path = corpus / "openstack" / "loghub" / "OpenStack_2k.log"
    events = list(read_events(discover([str(path)])))
    assert len(events) == 2000
    assert [a.summary for a in run(OURS, events)] == []


def test_loghub_openssh_sample_shows_its_real_brute_forcers(corpus: Path) -> None:
    """LabSZ's OpenSSH sample is an internet-facing host under constant attack."""
    path = corpus / "linux-auth" / "loghub" / "OpenSSH_2k.log"
    alerts = run([rule("auth/sshd_bruteforce.yaml")], read_events(discover([str(path)])))
    found = {a.source_ip for a in alerts}
    assert {"183.62.140.253", "187.141.143.180", "103.99.0.122"} <= found
    assert all(a.host and a.category == "auth.bruteforce" for a in alerts)



def test_loghub_linux_sample_shows_its_pam_only_brute_forcers(corpus: Path) -> None:
    """Linux_2k is /var/log/messages of a 2005 host: only `sshd(pam_unix)` failures, no sshd
    "Failed password" lines. The PAM-only rule finds its bursts (218.188.2.4: 12 in a minute at
    lines 19-42; 150.183.249.110: 80 on 10 July), the sshd rule stays quiet there and the PAM-only
    rule stays quiet on the modern LabSZ sample (its PAM lines are sshd's own)."""
    linux = list(read_events(discover([str(corpus / "linux-auth" / "loghub" / "Linux_2k.log")])))
    pam = run([rule("auth/sshd_pam_bruteforce.yaml")], linux)
    assert {"218.188.2.4", "150.183.249.110"} <= {a.source_ip for a in pam}
    assert all(a.host == "combo" and a.category == "auth.bruteforce" for a in pam)
    assert len({a.source_ip for a in pam}) >= 20
    assert run([rule("auth/sshd_bruteforce.yaml")], linux) == []
    modern = read_events(discover([str(corpus / "linux-auth" / "loghub" / "OpenSSH_2k.log")]))
    assert run([rule("auth/sshd_pam_bruteforce.yaml")], modern) == []

# ------------------------------------------------------------------ one attempt, three files

def real_cadf_failure(corpus: Path) -> str:
    """The real failed login of canonical-smoke-alerts/references.md (Charmed OpenStack Yoga),
    read in place; the document's copy ends with one stray closing brace, removed here."""
    text = (corpus / "cadf" / "canonical-smoke-alerts" / "references.md").read_text()
    line = next(x for x in text.splitlines() if '"event_type": "identity.authenticate"' in x)
    assert line.endswith('074"}}')
    return line[:-1]


AGENT = "openstacksdk/0.61.0 keystoneauth1/4.4.0 python-requests/2.25.1 CPython/3.10.12"
UNAUTHORIZED = "The request you have made requires authentication."


def http_401(ip: str, t: datetime) -> str:
    return f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "POST /v3/auth/tokens HTTP/1.1" 401 114 "-" "{AGENT}"'


def write_attempts(root: Path, real: str, attempts: int, ip: str = "10.149.54.84") -> None:
    """``attempts`` failed logins, each in ctl1's keystone_access.log, keystone.log and the
    notification dump, 15 s apart (the first is the real CADF line)."""
    host = root / "ctl1"
    host.mkdir(parents=True)
    base = json.loads(real)
    t0 = datetime(2025, 9, 30, 1, 49, 47, 431826, tzinfo=UTC)
    access, log, bus = [], [], []
    for i in range(attempts):
        t = t0 + timedelta(seconds=15 * i)
        rid = f"req-a0d99f5f-c103-4b80-b91f-{i:012d}" if i else "req-a0d99f5f-c103-4b80-b91f-76a7ec69cedd"
        payload = json.loads(json.dumps(base))
        payload["payload"]["initiator"].update(request_id=rid, host={"address": ip, "agent": AGENT})
        payload["timestamp"] = (t + timedelta(microseconds=174248)).strftime("%Y-%m-%d %H:%M:%S.%f")
        bus.append(real if i == 0 and ip == "10.149.54.84" else json.dumps(payload))
        access.append(http_401(ip, t))
        tl = t + timedelta(microseconds=166000)
        log.append(f"{tl:%Y-%m-%d %H:%M:%S}.{tl.microsecond // 1000:03d} 1756847 WARNING "
                   f"keystone.server.flask.application [{rid} - - - - -] Authorization failed. "
                   f"{UNAUTHORIZED} from {ip}: Unauthorized: {UNAUTHORIZED}")
    (host / "keystone_access.log").write_text("\n".join(access) + "\n")
    (host / "keystone.log").write_text("\n".join(log) + "\n")
    (host / "notifications.json").write_text("\n".join(bus) + "\n")


@pytest.mark.parametrize(("attempts", "alerts"), [(29, 0), (30, 1)])
def test_attempts_written_in_three_files_count_once(tmp_path: Path, corpus: Path, attempts: int,
                                                   alerts: int) -> None:
    """The brute-force threshold is 30: 29 attempts are 87 records and must not fire."""
    write_attempts(tmp_path, real_cadf_failure(corpus), attempts)
    events = list(read_events(discover([str(tmp_path)])))
    assert len(events) == 3 * attempts
    found = run([rule("keystone/bruteforce_source_ip.yaml")], events)
    assert len(found) == alerts
    if alerts:
        assert found[0].details["events"] == 30
        assert found[0].source_ip == "10.149.54.84"
        assert found[0].host == "juju-644baf-yoga-ceph-6"  # the CADF copy is the primary
        assert "(last account tried: admin)" in found[0].summary  # the log line was enriched from CADF
    # without the correlation stage the same records would count three times
    assert len(run([rule("keystone/bruteforce_source_ip.yaml")], events, correlate=False)) == 1


# ------------------------------------------------------------------ engine changes made for these packs


def test_a_refused_login_on_a_locked_account_is_one_attempt(corpus: Path) -> None:
    """account.locked copies (keystone.log, CADF) and the Apache 401 are correlated like
    authenticate: one lockout alert naming the account, and the log line is enriched."""
    cadf = json.loads(real_cadf_failure(corpus))
    reason = "Maximum number of 5 login attempts exceeded."
    cadf["payload"]["reason"] = {"reasonCode": 401, "reasonType": reason}
    rid, uid = cadf["payload"]["initiator"]["request_id"], cadf["payload"]["initiator"]["user_id"]
    locked = f"The account is locked for user: {uid}."
    log = (f"2025-09-30 01:49:47.600 1756847 WARNING keystone.server.flask.application [{rid} - - - - -] "
           f"Authorization failed. {locked} from 10.149.54.84: AccountLocked: {locked}")
    http = http_401("10.149.54.84", datetime(2025, 9, 30, 1, 49, 47, tzinfo=UTC))
    events = parse_text("\n".join([http, json.dumps(cadf), log]) + "\n", host="ctl1")
    assert [e.action for e in events] == ["authenticate", "account.locked", "account.locked"]
    [alert] = run([rule("keystone/account_locked.yaml")], events)
    assert alert.user == "admin" and alert.severity == "critical"
    # before the change the keystone.log copy raised its own, nameless alert
    assert len(run([rule("keystone/account_locked.yaml")], events, correlate=False)) == 2


def test_an_absence_rule_only_watches_declared_sources_it_can_hear() -> None:
    """The engine's expected_sources go to every absence rule keyed (host, service), but
    the heartbeat rule (service: stackwatch) must not call a declared nova-compute silent."""
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    events = [make_event(time=t0 + timedelta(minutes=i), host="cmp1", service="nova-compute", kind="oslo_log")
              for i in range(30)]
    heartbeat = rule("logging/monitor_pipeline_stalled.yaml")
    declared = [{"host": "cmp3", "service": "nova-compute"}, {"host": "mon1", "service": "stackwatch"}]
    alerts = run([heartbeat], events, expected_sources=declared)
    assert [(a.host, a.service) for a in alerts] == [("mon1", "stackwatch")]
    silence = rule("logging/source_silence.yaml")
    alerts = run([silence], events, expected_sources=declared)
    assert [(a.host, a.service) for a in alerts] == [("cmp3", "nova-compute")]
