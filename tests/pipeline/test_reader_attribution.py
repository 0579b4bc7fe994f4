"""Service and host attribution: the record says which service and host it is from; the file
name and the folder layout are only fallbacks, and what stays unknown is counted."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import yaml

from stackwatch.parsers.service_hints import service_hint
from stackwatch.pipeline.analyze import analyze
from stackwatch.pipeline.engine import build_engine
from stackwatch.pipeline.reader import discover, read_events

RULES = Path(__file__).resolve().parents[2] / "src" / "stackwatch" / "rules"


def keystone_failures() -> str:
    """Thirty real-format keystone.log refusals from one address (the brute-force rule's own vector)."""
    rule = yaml.safe_load((RULES / "keystone" / "bruteforce_source_ip.yaml").read_text())
    return rule["tests"]["fire"][0]["lines"]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


def alerts_of(path: Path) -> list[tuple[str, str, int]]:
    result = analyze(discover([str(path)], host="ctl1"), engine=build_engine())
    return sorted((a.rule, a.key, a.count) for a in result.alerts)


@pytest.fixture(scope="module")
def keystone_log_alerts(tmp_path_factory) -> list[tuple[str, str, int]]:
    alerts = alerts_of(write(tmp_path_factory.mktemp("named") / "keystone.log", keystone_failures()))
    assert alerts, "the brute force must raise an alert as keystone.log"
    return alerts


@pytest.mark.parametrize("name", [
    "wsgi-keystone.log", "keystone-ctl2.log.gz", "ctl2-keystone.log.gz", "foo.log", "messages",
])
def test_the_same_keystone_log_raises_the_same_alerts_whatever_its_file_name(
        name: str, keystone_log_alerts, tmp_path: Path):
    assert alerts_of(write(tmp_path / name, keystone_failures())) == keystone_log_alerts


@pytest.mark.parametrize("name", [
    "wsgi-keystone.log", "keystone-ctl2.log.gz", "ctl2-keystone.log.gz", "foo.log"])
def test_an_oslo_record_takes_its_service_from_its_logger(name: str, tmp_path: Path):
    events = list(read_events(discover([str(write(tmp_path / name, keystone_failures()))])))
    assert {e.service for e in events} == {"keystone"}


@pytest.mark.parametrize(("name", "service"), [
    ("wsgi-keystone.log", "keystone"),
    ("keystone-ctl2.log.gz", "keystone"),
    ("ctl2-keystone.log.gz", "keystone"),
    ("keystone-wsgi-public.log", "keystone"),
    ("ctl2-nova-compute.log", "nova-compute"),
    ("nova-api.log", "nova-api"),
    ("foo.log", "foo"),  # no known service in it: the name itself, counted as unattributed
])
def test_a_file_name_hint_is_the_known_service_it_names(name: str, service: str):
    assert service_hint(name) == service


def test_a_nova_binary_named_by_its_file_wins_over_the_loggers_guess(tmp_path: Path):
    # nova.compute.api runs in nova-api: the logger's guess would be nova-compute
    line = "2017-05-16 00:00:00.008 25746 INFO nova.compute.api [-] Deleting instance\n"
    events = list(read_events(discover([str(write(tmp_path / "nova-api.log", line))])))
    assert [e.service for e in events] == ["nova-api"]


def test_records_of_no_known_service_are_counted_per_file(tmp_path: Path):
    access = '10.0.0.1 - - [16/May/2017:00:00:01 +0000] "GET /index.html HTTP/1.1" 200 12 "-" "curl/8"\n'
    inputs = discover([str(write(tmp_path / "foo.log", access * 3))])
    list(read_events(inputs))
    assert (inputs[0].events, inputs[0].unattributed) == (3, 3)


def test_records_with_a_known_service_are_not_counted_as_unattributed(tmp_path: Path):
    inputs = discover([str(write(tmp_path / "foo.log", keystone_failures()))])
    list(read_events(inputs))
    assert (inputs[0].events, inputs[0].unattributed) == (30, 0)


def test_a_lone_files_folder_is_not_its_host(tmp_path: Path):
    path = write(tmp_path / "x" / "ks.log.gz", keystone_failures())
    inputs = discover([str(path)])
    events = list(read_events(inputs))
    assert inputs[0].host == ""
    assert {e.host for e in events} == {""}
    assert inputs[0].hostless == 30


def test_a_lone_file_takes_the_host_option(tmp_path: Path):
    inputs = discover([str(write(tmp_path / "x" / "ks.log", keystone_failures()))], host="ctl7")
    assert {e.host for e in read_events(inputs)} == {"ctl7"}
    assert inputs[0].hostless == 0


def test_a_lone_syslog_file_takes_the_host_its_records_name(tmp_path: Path):
    line = "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n"
    inputs = discover([str(write(tmp_path / "x" / "auth.log", line))])
    assert [e.host for e in read_events(inputs)] == ["LabSZ"]
    assert inputs[0].hostless == 0


def test_a_folder_given_as_root_names_hosts_by_its_subfolders(tmp_path: Path):
    write(tmp_path / "ctl2" / "ks.log", keystone_failures())
    inputs = discover([str(tmp_path)])
    assert {e.host for e in read_events(inputs)} == {"ctl2"}


@pytest.mark.parametrize("tag", ["keystone", "keystone-wsgi-public", "keystone-all"])
def test_a_syslog_tag_keystone_runs_under_is_keystone(tag: str, tmp_path: Path):
    line = (f"Jul 30 17:20:20 ctl1 {tag}[3279]: 2017-07-30 17:20:20.506 3279 WARNING keystone.common.wsgi "
            "[req-b28d7cf9-8591-4629-99a1-bdcd85b046b4 - - - - -] Authorization failed. "
            "The request you have made requires authentication. from 172.16.1.5\n")
    events = list(read_events(discover([str(write(tmp_path / "syslog", line))])))
    assert [(e.service, e.action, e.outcome) for e in events] == [("keystone", "authenticate", "failure")]
