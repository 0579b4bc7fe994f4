"""Maintenance windows: cron-like recurring, one-off, host groups, services."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.core.errors import ConfigError
from stackwatch.detect.schedule import Cron, MaintenanceSchedule

SCHEDULE = MaintenanceSchedule.from_config({
    "host_groups": {"computes": ["cmp-*", "compute*"]},
    "windows": [
        {"name": "saturday patching", "cron": "0 2 * * sat", "duration": "2h", "hosts": ["@computes"],
         "services": ["nova-*"]},
        {"name": "keystone upgrade", "start": "2026-03-10T20:00:00Z", "end": "2026-03-10T23:00:00Z",
         "hosts": ["ctl1"]},
        {"name": "paris nights", "cron": "30 23 * * *", "duration": "1h", "timezone": "Europe/Paris",
         "hosts": ["net1"]},
    ],
})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(("when", "host", "service", "window"), [
    ("2026-03-07T02:00:00", "cmp-1", "nova-compute", "saturday patching"),  # 2026-03-07 is a Saturday
    ("2026-03-07T03:59:00", "compute7", "nova-compute", "saturday patching"),
    ("2026-03-07T04:00:00", "cmp-1", "nova-compute", None),
    ("2026-03-07T01:59:00", "cmp-1", "nova-compute", None),
    ("2026-03-08T02:30:00", "cmp-1", "nova-compute", None),  # Sunday
    ("2026-03-07T02:30:00", "ctl1", "nova-compute", None),  # not a compute
    ("2026-03-07T02:30:00", "cmp-1", "libvirtd", None),  # not a nova service
    ("2026-03-10T21:00:00", "ctl1", "keystone", "keystone upgrade"),
    ("2026-03-10T23:00:00", "ctl1", "keystone", None),
    ("2026-03-10T22:45:00", "net1", "neutron-server", "paris nights"),  # 23:45 in Paris (UTC+1)
    ("2026-03-10T23:45:00", "net1", "neutron-server", None),
])
def test_windows_cover_only_their_hosts_services_and_times(when: str, host: str, service: str,
                                                           window: str | None) -> None:
    assert SCHEDULE.active(at(when), host, [service]) == window


def test_window_crossing_midnight() -> None:
    schedule = MaintenanceSchedule.from_config([{"name": "late", "cron": "0 23 * * *", "duration": "3h"}])
    assert schedule.active(at("2026-03-02T01:30:00"), "any", ["x"]) == "late"
    assert schedule.active(at("2026-03-02T02:00:00"), "any", ["x"]) is None


def test_cron_fields() -> None:
    cron = Cron.parse("*/15 8-17 1,15 jan-mar mon-fri")
    assert cron.minutes == {0, 15, 30, 45}
    assert cron.hours == set(range(8, 18))
    assert cron.months == {1, 2, 3}
    assert cron.weekdays == {1, 2, 3, 4, 5}


def test_empty_schedule_covers_nothing() -> None:
    assert not MaintenanceSchedule.from_config(None)
    assert MaintenanceSchedule().active(at("2026-03-07T02:00:00"), "cmp-1", ["nova-compute"]) is None


@pytest.mark.parametrize("window", [
    {"name": "x", "cron": "0 2 * *", "duration": "1h"},
    {"name": "x", "cron": "0 2 * * *"},
    {"name": "x", "start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
    {"name": "x", "cron": "0 25 * * *", "duration": "1h"},
    {"name": "x", "start": "2026-01-01", "end": "2026-01-02", "hosts": ["@nogroup"]},
    {"name": "x", "every": "day"},
])
def test_bad_windows_are_config_errors(window: dict[str, str]) -> None:
    with pytest.raises(ConfigError):
        MaintenanceSchedule.from_config([window])
