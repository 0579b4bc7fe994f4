"""Orphaned resources: what a deleted user, project or domain leaves behind, and reclaiming it.

- ``ledger``: the resources alive per owner, followed from notifications (bounded, persistable);
- ``orphans``: the engine-side detector raising ``identity.orphaned_resources`` on a deletion;
- ``openstack``: confirmation and the reconciliation sweep through the OpenStack API;
- ``policy``: what to do per resource type (report only by default), grace period, approval;
- ``approvals``: the queue of planned actions in the data folder (``respond list/approve/reject``);
- ``actions``: the executor (dry-run plan, idempotent actions, retries, events in the store);
- ``reconcile``: one pass of sweep + confirm + plan + queue + run, shared by the CLI and serve.
"""
