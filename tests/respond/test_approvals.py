"""approvals: the queue of planned actions in the data folder, and the operator's decisions."""

from __future__ import annotations

import pytest

from stackwatch.respond.approvals import ApprovalError, ApprovalQueue
from stackwatch.respond.policy import PlannedAction
from stackwatch.store import EventQuery, open_store


def _action(resource: str = "i1", action: str = "terminate_instance") -> PlannedAction:
    return PlannedAction(action, "instance", resource, "web", "project", "p1")


def test_enqueue_is_idempotent(tmp_path):
    with ApprovalQueue.open(tmp_path) as queue:
        first = queue.enqueue([_action("i1"), _action("i2")], approval=True, grace=0)
        again = queue.enqueue([_action("i1"), _action("i3")], approval=True, grace=0)
        assert len(first) == 2 and len(again) == 1
        assert [p.planned.resource_id for p in queue.list_pending()] == ["i1", "i2", "i3"]


def test_queue_lives_in_the_data_folder(tmp_path):
    with ApprovalQueue.open(tmp_path) as queue:
        queue.enqueue([_action()], approval=True, grace=0)
    assert (tmp_path / "respond" / "actions.sqlite").exists()
    with ApprovalQueue.open(tmp_path) as queue:
        assert len(queue.list_pending()) == 1


def test_approve_then_due(tmp_path):
    with ApprovalQueue.open(tmp_path) as queue:
        (action_id,) = queue.enqueue([_action()], approval=True, grace=0)
        assert queue.due() == []
        item = queue.approve(action_id, "alice")
        assert (item.status, item.decided_by) == ("approved", "alice")
        assert [d.id for d in queue.due()] == [action_id] and queue.list_pending() == []


def test_reject_needs_a_reason_and_is_final(tmp_path):
    with ApprovalQueue.open(tmp_path) as queue:
        (action_id,) = queue.enqueue([_action()], approval=True, grace=0)
        with pytest.raises(ApprovalError):
            queue.reject(action_id, "alice", "  ")
        assert queue.reject(action_id, "alice", "still needed").reason == "still needed"
        with pytest.raises(ApprovalError, match="rejected, not pending"):
            queue.approve(action_id, "bob")
        assert queue.due() == []


def test_unknown_id(tmp_path):
    with ApprovalQueue.open(tmp_path) as queue, pytest.raises(ApprovalError, match="no queued action"):
        queue.approve(42, "alice")


def test_without_approval_actions_are_approved_after_the_grace_period(tmp_path):
    with ApprovalQueue.open(tmp_path) as queue:
        queue.enqueue([_action()], approval=False, grace=3600)
        assert queue.list_pending() == [] and queue.due() == []
        (item,) = queue.actions("approved")
        assert [d.id for d in queue.due(now=item.due.timestamp() + 1)] == [item.id]


def test_decisions_are_events_in_the_store(tmp_path):
    with open_store(tmp_path) as store, ApprovalQueue.open(tmp_path, store=store) as queue:
        ids = queue.enqueue([_action("i1"), _action("i2")], approval=True, grace=0)
        queue.approve(ids[0], "alice")
        queue.reject(ids[1], "bob", "keep it")
        events = [s.event for s in store.search_events(EventQuery(kind="response", newest_first=False))]
    assert [(e.action, e.initiator.name, e.target.id) for e in events] == [
        ("response.approve", "alice", "i1"), ("response.reject", "bob", "i2")]
    assert events[1].attrs["reason"] == "keep it"
