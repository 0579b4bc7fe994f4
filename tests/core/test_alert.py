"""AlertSnapshot: the frozen copy of an Alert that sinks are handed."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from stackwatch.core.alert import Alert, AlertSnapshot, Evidence, alert_to_dict

NOW = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def _alert(**fields: object) -> Alert:
    return Alert(rule="r", title="t", category="auth.bruteforce", severity="high", time=NOW, last_seen=NOW,
                 **fields)  # type: ignore[arg-type]


def _defaults(struct: type[msgspec.Struct]) -> list[tuple[str, object]]:
    return [(field.name, field.default if field.default is not msgspec.NODEFAULT else field.default_factory)
            for field in msgspec.structs.fields(struct)]


def test_snapshot_has_alerts_fields_in_alerts_order_with_the_same_defaults() -> None:
    alert_fields, snapshot_fields = _defaults(Alert), _defaults(AlertSnapshot)
    assert [name for name, _ in snapshot_fields] == [name for name, _ in alert_fields]
    differing = {name for (name, a), (_, s) in zip(alert_fields, snapshot_fields, strict=True) if a != s}
    assert differing == {"evidence"}  # a tuple instead of a list: both empty by default


@pytest.mark.parametrize("alert", [
    _alert(),
    _alert(key="k", host="h", summary="s", count=3, status="resolved", source_ip="192.0.2.1",
           evidence=[Evidence(ref="a:1", raw="x", time=NOW)], details={"resolved_at": NOW.isoformat()}),
])
def test_snapshot_renders_to_the_same_json_as_its_alert(alert: Alert) -> None:
    assert alert_to_dict(AlertSnapshot.of(alert)) == alert_to_dict(alert)
    assert msgspec.json.encode(AlertSnapshot.of(alert)) == msgspec.json.encode(alert)


def test_snapshot_is_frozen() -> None:
    with pytest.raises(AttributeError):
        AlertSnapshot.of(_alert()).count = 2  # type: ignore[misc]


def test_snapshot_does_not_follow_later_changes_to_its_alert() -> None:
    alert = _alert(evidence=[Evidence(ref="a:1", raw="x")], details={"tags": ["one"]})
    snapshot = AlertSnapshot.of(alert)
    alert.count += 1
    alert.evidence.append(Evidence(ref="a:2", raw="y"))
    alert.details["tags"].append("two")  # type: ignore[attr-defined]
    assert snapshot.count == 1 and len(snapshot.evidence) == 1 and snapshot.details == {"tags": ["one"]}


def test_a_snapshot_of_a_snapshot_is_itself() -> None:
    snapshot = AlertSnapshot.of(_alert())
    assert AlertSnapshot.of(snapshot) is snapshot
