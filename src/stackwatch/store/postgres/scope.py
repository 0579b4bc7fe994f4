"""A tenant's ``Scope`` (store/scope.py) as SQL for the PostgreSQL store: the same rule as
``sqlite_scope``, with the ids as array parameters (one parameter per kind of id)."""

from __future__ import annotations

from typing import Any

from stackwatch.store.scope import Scope


def event_condition(scope: Scope) -> tuple[str, list[Any]]:
    targets, users, addresses = scope.event_ids()
    parts = ["e.init_project = %s", "e.target_id = ANY(%s::text[])"]
    params: list[Any] = [scope.project, sorted(targets)]
    if users:
        parts.append("e.init_id = ANY(%s::text[])")
        params.append(sorted(users))
    if scope.named_users:
        pairs = sorted(scope.named_users)
        parts.append("(e.init_name, e.init_domain) IN (SELECT * FROM unnest(%s::text[], %s::text[]))")
        params += [[n for n, _ in pairs], [d for _, d in pairs]]
    if addresses:
        parts.append("e.init_ip = ANY(%s::text[])")
        params.append(sorted(addresses))
    return "(" + " OR ".join(parts) + ")", params


def alert_condition(scope: Scope) -> tuple[str, list[Any]]:
    parts = ["project = %s"]
    params: list[Any] = [scope.project]
    if scope.users:
        parts.append("user_name = ANY(%s::text[])")
        params.append(sorted(scope.users))
    if scope.named_users:
        pairs = sorted(scope.named_users)
        parts.append("(user_name, details::json ->> 'user_domain') IN "
                     "(SELECT * FROM unnest(%s::text[], %s::text[]))")
        params += [[n for n, _ in pairs], [d for _, d in pairs]]
    if scope.addresses:
        parts.append("source_ip = ANY(%s::text[])")
        params.append(sorted(scope.addresses))
    keys = scope.alert_keys()
    if keys:
        parts.append("key = ANY(%s::text[])")
        params.append(sorted(keys))
    return "(" + " OR ".join(parts) + ")", params
