"""auditd parser against the real audit logs of the corpus (go-libaudit, OMS-Auditd-Plugin)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import yaml

from stackwatch.parsers.auditd import MESSAGE_PARSER, PARSER, record_time
from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.framing import Framer

AUPARSE_LOGS = ["audit-rhel6.log", "audit-rhel7.log", "audit-ubuntu14.log", "audit-ubuntu16.log",
                "audit-ubuntu17.log", "test2.log", "test3.log"]
AUCOALESCE = [
    "random-internet", "rhel-7-linux-3.10.0", "ubuntu-16.04-linux-4.13.0", "ubuntu-16.10-linux-4.8.0",
    "ubuntu-17.04-linux-4.10.0", "ubuntu-20.04.6-linux-5.15.0-1034-gcp", "ubuntu-21.10-linux-5.13",
    "ubuntu-24.04-linux-6.8.0",
]


def frame(text: str):
    framer = Framer(ParseContext(host="h", origin="test"), parsers=(PARSER,))
    events = []
    for lineno, line in enumerate(text.split("\n"), 1):  # not splitlines(): it splits on \x1d
        events += framer.feed(line, lineno)
    return events + framer.flush()


def runs_of_serials(text: str) -> list[int]:
    """Serials of consecutive record runs (what one event per serial means in a file)."""
    runs: list[int] = []
    for serial in re.findall(r"audit\([^)]*:(\d+)\)", text):
        if not runs or runs[-1] != int(serial):
            runs.append(int(serial))
    return runs


@pytest.mark.parametrize("name", AUPARSE_LOGS)
def test_auparse_log_matches_golden_records(corpus, name):
    path = corpus / "auditd/go-libaudit/auparse" / name
    golden = [g for g in json.loads((path.parent / f"{name}.golden").read_text()) if g]
    events = [e for e in frame(path.read_text()) if e.kind == "auditd"]
    assert {e.attrs["serial"] for e in events} == {g["sequence"] for g in golden}
    for record in golden:
        rtype, data = record["record_type"].upper(), record["data"]
        event = next(e for e in events
                     if e.attrs["serial"] == record["sequence"] and rtype in e.attrs["records"])
        for key in ("acct", "addr", "exe", "comm", "cwd", "cmd", "table", "entries", "family", "unit", "op",
                    "terminal", "proctitle"):
            if key in data and rtype != "SOCKADDR":
                assert str(event.attrs[key]) == data[key], (name, record["sequence"], key)
        if rtype == "EXECVE":
            assert event.attrs["argv"] == [data[f"a{i}"] for i in range(int(data["argc"]))]
        if rtype == "SOCKADDR" and "addr" in data:
            assert event.attrs["socket_addr"] == data["addr"]


def test_auparse_unknown_record_without_audit_stamp_is_kept_unparsed(corpus):
    events = frame((corpus / "auditd/go-libaudit/auparse/audit-rhel7.log").read_text())
    assert [e.raw for e in events if e.kind == "unparsed"] == ["type=UNKNOWN[1329] msg=?"]


def test_interleaved_records_of_one_millisecond_give_one_event_per_serial(corpus):
    text = (corpus / "auditd/go-libaudit/auparse/test3.log").read_text()
    events = frame(text)
    serials = [e.attrs["serial"] for e in events]
    assert len(serials) == len(set(serials)) == len(set(runs_of_serials(text)))
    sshd = next(e for e in events if e.attrs["serial"] == 194437)
    assert sshd.attrs["records"] == ["SYSCALL", "PROCTITLE"]
    assert sshd.attrs["proctitle"] == "sshd: burn [priv]"


def aucoalesce_cases():
    from stackwatch.testing import corpus_dir

    CORPUS = corpus_dir()

    for name in AUCOALESCE:
        path = CORPUS / "auditd/go-libaudit/aucoalesce" / f"{name}.yaml"
        if not path.exists():
            continue
        expected = json.loads(path.with_suffix(".json.golden").read_text())
        golden = {t["test_name"]: t["event"] for t in expected}
        for test_name, text in yaml.safe_load(path.read_text())["tests"].items():
            yield pytest.param(text, golden.get(test_name), id=f"{name}:{test_name}")


@pytest.mark.parametrize(("text", "golden"), list(aucoalesce_cases()))
def test_aucoalesce_event_matches_golden(text, golden):
    events = frame(text)
    assert len(events) == len(set(runs_of_serials(text))) == 1
    event = events[0]
    assert event.kind == "auditd"
    assert event.attrs["serial"] == golden["sequence"]
    process = golden.get("process", {})
    if "args" in process:
        assert event.attrs["argv"] == process["args"]
        assert event.action == "process.exec"
    if "title" in process:
        assert event.attrs["proctitle"] == process["title"]
    if "exe" in process:
        assert event.attrs["exe"] == process["exe"]
    for key in ("table", "entries", "family", "acct", "unit"):
        if key in golden.get("data", {}):
            assert str(event.attrs[key]) == golden["data"][key]
    assert event.outcome == {"success": "success", "fail": "failure"}.get(golden.get("result"))


def oms_raw_events():
    from stackwatch.testing import corpus_dir

    CORPUS = corpus_dir()

    path = CORPUS / "auditd/oms-auditd-plugin/TestEventData.cpp"
    if not path.exists():
        return []
    source = path.read_text()
    block = source[source.index("raw_test_events"):source.index("raw_events_do_flush")]
    return re.findall(r'R"event\((.*?)\)event"', block, re.S)


@pytest.mark.parametrize("text", oms_raw_events())
def test_oms_raw_event_parses_one_event_per_serial(text):
    events = frame(text.strip("\n"))
    assert all(e.kind == "auditd" for e in events)
    assert [e.attrs["serial"] for e in events] == runs_of_serials(text)


def test_oms_oversized_event_is_cut_not_lost(corpus):
    source = (corpus / "auditd/oms-auditd-plugin/TestEventData.cpp").read_text()
    text = re.search(r'oversized_event_text = +R"event\((.*?)\)event"', source, re.S).group(1).strip("\n")
    events = frame(text)
    assert sum(len(e.raw) for e in events) >= len(text) - text.count("\n")
    assert events[0].attrs["argv"][:3] == ["/bin/echo", "aueventgen", "2020-11-17T07:54:00.429207603"]


def test_enriched_fields_after_group_separator():
    line = ('type=SYSCALL msg=audit(1700000000.300:700): arch=c000003e syscall=59 success=yes exit=0 ppid=1 '
            'pid=12 auid=1000 uid=0 comm="su" exe="/usr/bin/su" key=(null)\x1dARCH=x86_64 SYSCALL=execve '
            'AUID="alice" UID="root"')
    event = PARSER.parse([line], ParseContext(host="h"))[0]
    assert (event.initiator.id, event.initiator.name) == ("1000", "alice")
    assert event.attrs["SYSCALL"] == "execve"
    assert event.attrs["key"] == "(null)"


def test_syslog_forwarded_record_maps_like_a_raw_one():
    fields = MESSAGE_PARSER.parse_message(
        "audispd", "node=cmp1 type=EXECVE msg=audit(1700000000.500:900): argc=3 a0=\"iptables\" a1=\"-F\" "
                   "a2=494E505554")
    assert fields["action"] == "process.exec"
    assert fields["attrs"]["argv"] == ["iptables", "-F", "INPUT"]
    assert fields["host"] == "cmp1"
    assert fields["time"].isoformat() == "2023-11-14T22:13:20.500000+00:00"


def test_journald_audit_message_without_stamp():
    fields = MESSAGE_PARSER.parse_message(
        "audit", "USER_AUTH pid=7 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication "
                 "grantors=? acct=\"admin\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.9 addr=203.0.113.9 "
                 "terminal=ssh res=failed'")
    assert (fields["action"], fields["outcome"]) == ("authenticate", "failure")
    assert fields["initiator"].name == "admin"
    assert "time" not in fields


def test_plain_auditd_daemon_message_is_not_a_record():
    assert MESSAGE_PARSER.parse_message("auditd", "Audit daemon rotating log files") is None


@pytest.mark.parametrize("line", [
    "Jan  2 10:00:00 host sshd[1]: type=SYSCALL msg=audit(1.1:1): x",
    "2017-05-16 00:00:00.008 25746 INFO nova.compute [-] type=x",
    "{\"type\": \"SYSCALL\"}",
])
def test_sniff_refuses_other_formats(line):
    assert not PARSER.sniff(line)


@pytest.mark.parametrize("stamp", ["1772438420.220", "1772438420.9999", "1772438420", "0.1", "-5.5",
                                   "253402300799.999", "-62135596800.000"])
def test_record_time_is_the_epoch_stamp_in_utc(stamp):
    seconds, _, millis = stamp.partition(".")
    micros = int(millis[:3].ljust(3, "0")) * 1000
    expected = datetime.fromtimestamp(int(seconds), UTC).replace(microsecond=micros)
    got = record_time(stamp)
    assert got == expected and got.tzinfo is UTC


@pytest.mark.parametrize("stamp", ["253402300800.0", "-62135596801.0", "99999999999999999999.1"])
def test_record_time_out_of_range_raises_like_fromtimestamp(stamp):
    with pytest.raises((ValueError, OverflowError, OSError)):
        record_time(stamp)
