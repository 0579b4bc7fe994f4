"""The cluster roles (docs/cluster.md): collectors, analyzers and partitions, read from the broker
by the same code as ``stackwatch cluster status`` (cluster/status.py). Shown as "not configured"
when the web's configuration file has no ``cluster:`` section."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from stackwatch.api.auth import Principal, viewer
from stackwatch.web.render import render

router = APIRouter()


class _Cache:
    """The last status read: every reading listens one heartbeat interval on the broker, so page
    loads and API calls within that interval share it (and one reading runs at a time)."""

    def __init__(self) -> None:
        self.status: Any = None
        self.read_at = 0.0
        self.lock = asyncio.Lock()


async def _status(request: Request) -> tuple[Any, str | None]:
    """(status, None) or (None, why it could not be read); raises 404 when no cluster is configured."""
    from stackwatch.cluster.membership import BEAT_INTERVAL
    from stackwatch.cluster.status import read_status
    from stackwatch.cluster.topology import Topology

    cluster = request.app.state.settings.cluster
    if cluster is None:
        raise HTTPException(
            404, "no cluster configured (no cluster: section in the web's configuration)"
        )
    cache: _Cache = getattr(request.app.state, "cluster_status", None) or _Cache()
    request.app.state.cluster_status = cache
    async with cache.lock:
        if cache.status is None or time.monotonic() - cache.read_at > BEAT_INTERVAL:
            try:
                topology = Topology(cluster.name, cluster.partitions)
                cache.status = await read_status(cluster.connect_url(), topology, BEAT_INTERVAL + 0.5)
            except Exception as exc:  # the broker down or refusing: said on the page, not a 500
                return None, f"cannot read the cluster {cluster.name!r} from the broker: {exc}"
            cache.read_at = time.monotonic()
        return cache.status, None


@router.get("/api/v1/cluster", tags=["cluster"], summary="Collectors, analyzers and partitions")
async def cluster_status(
    request: Request, principal: Annotated[Principal, Depends(viewer)]
) -> dict[str, Any]:
    status, error = await _status(request)
    if status is None:
        raise HTTPException(503, error)
    return {**status.to_dict(), "problems": status.problems}


@router.get("/cluster", include_in_schema=False)
async def cluster_page(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> Response:
    if request.app.state.settings.cluster is None:
        return render(request, "cluster.html", cluster=None, error=None, configured=False)
    status, error = await _status(request)
    return render(request, "cluster.html", cluster=status, error=error, configured=True)
