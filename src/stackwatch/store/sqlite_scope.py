"""A tenant's ``Scope`` (store/scope.py) as SQL for the embedded store: one condition for
events (on the ``events AS e`` row) and one for alerts (on the ``alerts`` row). Both are
fixed text; the ids travel as JSON-array parameters read with ``json_each``, so a scope of
thousands of resources is still one parameter per kind."""

from __future__ import annotations

import json
from typing import Any

from stackwatch.store.scope import Scope


def _ids(values: frozenset[str]) -> str:
    return json.dumps(sorted(values))


def _pairs(values: frozenset[tuple[str, str]]) -> str:
    return json.dumps(sorted(values))


# (name, domain) pairs travel as one JSON array of [name, domain] arrays: a row value IN the
# pairs, so a name matches only together with its domain
_PAIRS = "(SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))"


def event_condition(scope: Scope) -> tuple[str, list[Any]]:
    """The events about ``scope``'s project (see store/scope.py for the rule)."""
    targets, users, addresses = scope.event_ids()
    parts = ["e.init_project = ?", "e.target_id IN (SELECT value FROM json_each(?))"]
    params: list[Any] = [scope.project, _ids(targets)]
    if users:
        parts.append("e.init_id IN (SELECT value FROM json_each(?))")
        params.append(_ids(users))
    if scope.named_users:
        parts.append(f"(e.init_name, e.init_domain) IN {_PAIRS}")
        params.append(_pairs(scope.named_users))
    if addresses:
        parts.append("e.init_ip IN (SELECT value FROM json_each(?))")
        params.append(_ids(addresses))
    return "(" + " OR ".join(parts) + ")", params


def alert_condition(scope: Scope) -> tuple[str, list[Any]]:
    """The alerts about ``scope``'s project (see store/scope.py for the rule)."""
    parts = ["project = ?"]
    params: list[Any] = [scope.project]
    if scope.users:
        parts.append("user_name IN (SELECT value FROM json_each(?))")
        params.append(_ids(scope.users))
    if scope.named_users:
        parts.append(f"(user_name, json_extract(details, '$.user_domain')) IN {_PAIRS}")
        params.append(_pairs(scope.named_users))
    if scope.addresses:
        parts.append("source_ip IN (SELECT value FROM json_each(?))")
        params.append(_ids(scope.addresses))
    keys = scope.alert_keys()
    if keys:
        parts.append("key IN (SELECT value FROM json_each(?))")
        params.append(_ids(keys))
    return "(" + " OR ".join(parts) + ")", params
