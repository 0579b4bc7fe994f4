"""AIDE: report framing and the one-line syslog format."""

from __future__ import annotations

import pytest

from stackwatch.parsers.aide import MESSAGE_PARSER, PARSER


@pytest.mark.parametrize("line", [
    "Start timestamp: 2023-10-05 03:00:01 +0000 (AIDE 0.17.4)",
    "AIDE 0.15.1 found differences between database and filesystem!!",
    "AIDE found NO differences between database and filesystem. Looks okay!!",
])
def test_sniff_accepts_report_starts(line):
    assert PARSER.sniff(line)


@pytest.mark.parametrize("line", [
    "Jan  2 10:00:00 ctl1 aide[1]: summary;total_number_of_files=1",
    "AIDE is a tool",
    "[12:00:01] Info: Start date",
])
def test_sniff_refuses_other_lines(line):
    assert not PARSER.sniff(line)


def test_a_syslog_line_ends_the_report():
    first = "Start timestamp: 2023-10-05 03:00:01 +0000 (AIDE 0.17.4)"
    assert PARSER.continues(first, "f   ...    .C... : /etc/sudoers")
    assert PARSER.continues(first, "AIDE found differences between database and filesystem!!")
    assert not PARSER.continues(first, "Jan  2 10:00:00 ctl1 sshd[1]: Accepted publickey for root")
    assert not PARSER.continues(first, "Start timestamp: 2023-10-06 03:00:01 +0000 (AIDE 0.17.4)")


def test_syslog_added_entry():
    fields = MESSAGE_PARSER.parse_message("aide", "file=/etc/cron.d/x;added")
    assert (fields["action"], fields["target"].name) == ("file.added", "/etc/cron.d/x")


def test_syslog_other_text_says_nothing():
    message = "AIDE initialized database at /var/lib/aide/aide.db.new"
    assert MESSAGE_PARSER.parse_message("aide", message) is None


@pytest.mark.parametrize("line", [
    "f+++++++++++++++++: /tmp/hp/aide/root/bin/new",
    "f-----------------: /usr/sbin/auditctl",
    "f > ... mc..H.. . : /etc/sudoers",
    "f   ...    .C... : /etc/sudoers",
])
def test_a_report_piece_names_its_entry(line):
    fields = MESSAGE_PARSER.parse_message("aide", line)
    assert fields is not None and fields["target"].name == line.partition(": ")[2]


@pytest.mark.parametrize("name", ["TIGER", "HAVAL", "WHIRLPOOL", "GOST", "SELinux", "Size"])
def test_a_database_attribute_piece_is_not_an_entry(name):
    """AIDE 0.18 with report_url=syslog sends each line of 'The attributes of the database' alone;
    a base64 hash may start with '/' (seen in the real-producer test: four all-letter hash names,
    each value starting so one time in 64, about one report in sixteen)."""
    line = f"{name:<10}: /EBIRIPhXMoz6awhJ/z52t8xWtM4Gfg9"
    assert MESSAGE_PARSER.parse_message("aide", line) is None
