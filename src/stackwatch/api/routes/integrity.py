"""Store integrity: last checkpoint, verification status, witness, inclusion proofs.
Shown as "not configured" when the store offers no integrity data (api/integrity.py)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from stackwatch.api.auth import Principal, viewer
from stackwatch.web.render import render

router = APIRouter()


@router.get("/api/v1/integrity", tags=["integrity"], summary="Checkpoints, verification and witness status")
def integrity_status(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    return request.app.state.services.integrity.report().to_dict()


@router.get(
    "/api/v1/integrity/proof/{seq}",
    tags=["integrity"],
    summary="Inclusion proof of one event in the latest checkpoint",
)
def inclusion_proof(
    request: Request, seq: int, principal: Annotated[Principal, Depends(viewer)]
) -> dict[str, Any]:
    provider = request.app.state.services.integrity
    if not provider.report().configured:
        raise HTTPException(404, "store integrity is not configured")
    proof = provider.proof(seq)
    if proof is None:
        raise HTTPException(404, f"no inclusion proof for event {seq} (not yet in a checkpoint?)")
    return {"seq": seq, "proof": proof}


@router.get("/integrity", include_in_schema=False)
def integrity_page(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> Response:
    return render(request, "integrity.html", report=request.app.state.services.integrity.report())
