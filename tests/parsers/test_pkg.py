"""Package logs: strict sniffing (dpkg.log and oslo.log both start with a date)."""

from __future__ import annotations

import pytest

from stackwatch.parsers.pkg import MESSAGE_PARSER, PARSER, split_nevra


@pytest.mark.parametrize("line", [
    "2024-01-02 10:00:00 upgrade openssh-server:amd64 1:8.9 1:9.0",
    "2024-01-02 10:00:00 status installed openssh-server:amd64 1:9.0",
    "2024-01-02T10:00:00+0000 SUBDEBUG Upgrade: openssh-8.0-1.x86_64",
    "Jan 02 10:00:00 Updated: openssh-8.0-1.x86_64",
])
def test_sniff_accepts_package_logs(line):
    assert PARSER.sniff(line)


@pytest.mark.parametrize("line", [
    "2017-05-16 00:00:00.008 25746 INFO nova.osapi_compute.wsgi.server [-] hi",
    "2017-05-16 00:00:00 25746 INFO nova.compute [-] hi",
    "Jan 02 10:00:00 ctl1 sshd[1]: Accepted publickey for root",
    "Jan 02 10:00:00 ctl1 Updated: x",
    "2024-01-02T10:00:00.123456+00:00 ctl1 sshd[1]: x",
])
def test_sniff_refuses_other_formats(line):
    assert not PARSER.sniff(line)


@pytest.mark.parametrize(("nevra", "expected"), [
    ("openssh-8.0p1-19.el8_8.x86_64",
     {"package": "openssh", "version": "8.0p1-19.el8_8", "arch": "x86_64"}),
    ("1:nfs-utils-1.3.0-0.68.el7.x86_64",
     {"package": "nfs-utils", "version": "1:1.3.0-0.68.el7", "arch": "x86_64"}),
    ("python3-pip-wheel-9.0.3-22.el8.noarch",
     {"package": "python3-pip-wheel", "version": "9.0.3-22.el8", "arch": "noarch"}),
])
def test_split_nevra(nevra, expected):
    assert split_nevra(nevra) == expected


def test_dpkg_via_syslog():
    fields = MESSAGE_PARSER.parse_message("dpkg", "remove telnetd:amd64 0.17-44 <none>")
    assert (fields["action"], fields["attrs"]["operation"], fields["attrs"]["package"]) == (
        "package.install", "remove", "telnetd")


def test_unrelated_dnf_message_says_nothing():
    assert MESSAGE_PARSER.parse_message("dnf", "Metadata cache refreshed recently.") is None
