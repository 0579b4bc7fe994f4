"""explained_by: an earlier event on the same entity marks a firing explained (lowered and
tagged) or drops it; memory is bounded and expires with the window."""

from __future__ import annotations

import pytest
from detect_helpers import ev, rule_from_yaml, run

from stackwatch.core.errors import RuleError

AIDE = """
kind: match
category: integrity.file_changed
severity: high
condition: {action: file.changed}
group_by: [host, target.name]
explained_by:
  condition: {action: package.install}
  window: 1h
  same: [host]
  link: {field: target.name, to: attrs.package, match: token}
  then: {severity: low, tag: explained}
"""

STOP = """
kind: match
category: service.unscheduled_stop
severity: high
condition: {action: service.stop}
group_by: [host, target.name]
explained_by:
  condition: {action: system.shutdown}
  window: 10m
  same: [host]
  then: {suppress: true}
"""


def upgrade(at: float, package: str = "nova-api", host: str = "ctl1"):
    return ev(at, host=host, service="dpkg", action="package.install", attrs={"package": package})


def changed(at: float, path: str = "/usr/bin/nova-api", host: str = "ctl1"):
    return ev(at, host=host, service="aide", action="file.changed", target={"type": "file", "name": path})


def test_a_change_after_the_matching_package_upgrade_is_lowered_and_tagged() -> None:
    engine = run(rule_from_yaml(AIDE), [upgrade(0), changed(600)])
    [alert] = engine.alerts()
    assert alert.severity == "low"
    assert alert.details["tags"] == ["explained"]
    assert alert.details["explained_by"]["value"] == "nova-api"
    assert any(e.ref == "t+0" for e in alert.evidence)  # the dpkg record joins the evidence
    assert engine.stats.explained == 1


def test_a_change_without_a_package_upgrade_keeps_its_severity() -> None:
    [alert] = run(rule_from_yaml(AIDE), [changed(600)]).alerts()
    assert alert.severity == "high" and "explained_by" not in alert.details


@pytest.mark.parametrize("path", ["/etc/nova/nova.conf", "/usr/bin/kswapd1", "/usr/bin/nova-api-extra"])
def test_an_upgrade_does_not_explain_files_it_is_not_linked_to(path: str) -> None:
    [alert] = run(rule_from_yaml(AIDE), [upgrade(0), changed(600, path)]).alerts()
    assert alert.severity == "high"


def test_an_upgrade_on_another_host_explains_nothing() -> None:
    [alert] = run(rule_from_yaml(AIDE), [upgrade(0, host="ctl2"), changed(600)]).alerts()
    assert alert.severity == "high"


def test_an_explanation_expires_after_the_window() -> None:
    [alert] = run(rule_from_yaml(AIDE), [upgrade(0), changed(3601)]).alerts()
    assert alert.severity == "high"


def test_a_later_upgrade_does_not_explain_an_earlier_change() -> None:
    [alert] = run(rule_from_yaml(AIDE), [changed(0), upgrade(60)]).alerts()
    assert alert.severity == "high"


def test_suppress_drops_the_firing() -> None:
    shutdown = ev(0, host="cmp4", service="systemd-logind", action="system.shutdown")
    stop = ev(50, host="cmp4", service="systemd", action="service.stop",
              target={"type": "unit", "name": "nova-compute.service"})
    engine = run(rule_from_yaml(STOP), [shutdown, stop])
    assert engine.alerts() == [] and engine.stats.explained == 1


def test_without_link_any_matching_event_on_the_same_key_explains() -> None:
    shutdown = ev(0, host="cmp4", action="system.shutdown")
    other_host = ev(50, host="cmp1", service="systemd", action="service.stop", target={"name": "x.service"})
    assert len(run(rule_from_yaml(STOP), [shutdown, other_host]).alerts()) == 1


def test_memory_keeps_a_bounded_number_of_linked_values() -> None:
    events = [upgrade(i, package=f"pkg{i}") for i in range(300)] + [changed(400, "/usr/bin/pkg0"),
                                                                     changed(401, "/usr/bin/pkg299")]
    alerts = run(rule_from_yaml(AIDE), events).alerts()
    assert [a.severity for a in alerts] == ["high", "low"]  # pkg0 was forgotten (256 kept)


@pytest.mark.parametrize(("block", "reason"), [
    ("explained_by: {window: 1h}", "'condition' is required"),
    ("explained_by: {condition: {action: x}}", "'window' is required"),
    ("explained_by: {condition: {action: x}, window: 1h, then: {severity: tiny}}", "then.severity"),
    ("explained_by: {condition: {action: x}, window: 1h, link: {field: target.name}}", "link is"),
    ("explained_by: {condition: {action: x}, window: 1h, link: {field: target.name, to: attrs.p, match: re}}",
     "link.match"),
    ("explained_by: {condition: {action: x}, window: 1h, same: [nothere]}", "unknown event field"),
    ("explained_by: {condition: {action: x}, window: 1h, then: {lower: true}}", "unknown field 'lower'"),
])
def test_a_broken_explained_by_is_a_load_error(block: str, reason: str) -> None:
    with pytest.raises(RuleError, match=reason):
        rule_from_yaml(f"kind: match\ncondition: {{action: file.changed}}\n{block}\n")
