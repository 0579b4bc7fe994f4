"""policy: per resource type responses (report only by default), validation with file:line, plans."""

from __future__ import annotations

import pytest

from stackwatch.core.errors import ConfigError
from stackwatch.respond.ledger import Resource
from stackwatch.respond.orphans import Orphan
from stackwatch.respond.policy import ResponsePolicy, load_policy, parse_duration


def _orphan(kind: str = "project") -> Orphan:
    return Orphan(kind, "p1", [
        Resource(type="volume", id="v1", project="p1"),
        Resource(type="instance", id="i1", name="web", project="p1"),
        Resource(type="floatingip", id="f1", project="p1"),
        Resource(type="port", id="port1", project="p1", extra={"device_owner": "compute:nova"}),
        Resource(type="port", id="port2", project="p1", extra={"device_owner": "network:dhcp"}),
    ])


def test_default_reports_only_and_needs_approval():
    policy = ResponsePolicy.from_mapping(None)
    assert policy.report_only and policy.approval and policy.grace == 86400
    assert policy.plan(_orphan()) == []


def test_plan_is_ordered_so_steps_never_fight():
    policy = ResponsePolicy(instances="terminate", snapshot=True, volumes="delete", floating_ips="release",
                            ports="delete")
    steps = [(a.action, a.resource_id) for a in policy.plan(_orphan())]
    assert steps == [("snapshot_instance", "i1"), ("terminate_instance", "i1"), ("release_floating_ip", "f1"),
                     ("detach_volume", "v1"), ("delete_volume", "v1"), ("delete_port", "port1")]


def test_keep_volumes_means_detach_only():
    policy = ResponsePolicy.from_mapping({"volumes": "keep"})
    assert [a.action for a in policy.plan(_orphan())] == ["detach_volume"]


def test_disassociate_floating_ips():
    assert [a.action for a in ResponsePolicy(floating_ips="disassociate").plan(_orphan())] == \
        ["disassociate_floating_ip"]


def test_user_deletions_lead_to_actions_only_when_listed():
    policy = ResponsePolicy(instances="terminate")
    assert policy.plan(_orphan("user")) == []
    (action,) = ResponsePolicy(instances="terminate", owners=("user",)).plan(_orphan("user"))
    assert action.params == {"project": "p1"}  # re-checked before acting


def test_from_yaml_file_with_respond_section(tmp_path):
    path = tmp_path / "stackwatch.yaml"
    path.write_text("store: x\nrespond:\n  instances: terminate\n  grace: 30m\n  approval: false\n"
                    "  owners: [project, user]\n")
    policy = load_policy(str(path))
    assert (policy.instances, policy.grace, policy.approval, policy.owners) == \
        ("terminate", 1800.0, False, ("project", "user"))


@pytest.mark.parametrize(("text", "line", "message"), [
    ("instances: nuke\n", 1, "must be one of report, terminate"),
    ("volumes: delete\ntreshold: 3\n", 2, "unknown setting 'treshold'"),
    ("grace: soon\n", 1, "not a duration"),
    ("approval: maybe\n", 1, "must be true or false"),
    ("owners: [project, tenant]\n", 1, "must list some of"),
    ("retries: 99\n", 1, "from 0 to 20"),
])
def test_errors_carry_file_and_line(tmp_path, text, line, message):
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_policy(str(path))
    assert info.value.line == line and message in str(info.value)
    assert str(info.value).startswith(f"{path}:{line}: respond.")


def test_invalid_yaml_is_a_config_error(tmp_path):
    path = tmp_path / "policy.yaml"
    path.write_text("instances: [terminate\n")
    with pytest.raises(ConfigError):
        load_policy(str(path))


@pytest.mark.parametrize(("value", "seconds"), [(90, 90.0), ("90s", 90.0), ("30m", 1800.0), ("24h", 86400.0),
                                                ("2d", 172800.0), ("0", 0.0)])
def test_durations(value, seconds):
    assert parse_duration(value) == seconds
