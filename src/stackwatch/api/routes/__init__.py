"""One module per resource; each has a ``router`` (API under /api/v1 and its dashboard page).
MODULES is the list create_app includes: a new resource is one module and one line here."""

from __future__ import annotations

from stackwatch.api.routes import (
    activity,
    alerts,
    cluster,
    events,
    health,
    integrity,
    keystone,
    live,
    overview,
    responses,
    rules,
    search,
    session,
    silences,
    sources,
    usage,
)

MODULES = (
    health,
    session,
    overview,
    alerts,
    silences,
    events,
    search,
    live,
    sources,
    rules,
    integrity,
    cluster,
    keystone,
    activity,
    responses,
    usage,
)
