"""Responses awaiting approval (e.g. cleaning up resources orphaned by a deleted project),
when the respond package provides them; an empty list otherwise."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from stackwatch.api.auth import Principal, viewer
from stackwatch.web.render import render

router = APIRouter()


@router.get("/api/v1/responses/pending", tags=["responses"], summary="Responses awaiting approval")
def pending(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    return {"pending": request.app.state.services.approvals()}


@router.get("/responses", include_in_schema=False)
def responses_page(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> Response:
    items = request.app.state.services.approvals()
    columns = sorted({key for item in items for key in item})[:8]
    return render(request, "responses.html", items=items, columns=columns)
