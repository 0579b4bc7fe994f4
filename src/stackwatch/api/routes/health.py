"""``/healthz``: the one route that needs no authentication (load balancers, systemd).
It says only that the process answers, nothing about the data."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness probe (no authentication)")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}
