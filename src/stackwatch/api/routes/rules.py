"""Rules: list, enable/disable (admin; kept in rule-state.json, recorded as audit events),
run their test vectors (responder)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from stackwatch.api.audit import audit_event
from stackwatch.api.auth import Principal, client_ip, responder, viewer
from stackwatch.detect.model import Rule
from stackwatch.detect.vectors import VectorResult
from stackwatch.web.render import render

router = APIRouter()


def _rule_dict(rule: Rule, enabled: bool) -> dict[str, Any]:
    return {
        "id": rule.id,
        "title": rule.title,
        "category": rule.category,
        "severity": rule.severity,
        "kind": rule.kind,
        "enabled": enabled,
        "source": rule.where,
        "description": rule.description,
        "tags": list(rule.tags),
    }


def _results(results: list[VectorResult]) -> dict[str, Any]:
    failed = [r for r in results if r.failure is not None]
    return {
        "vectors": len(results),
        "passed": len(results) - len(failed),
        "failed": len(failed),
        "results": [{"case": str(r.case), "ok": r.failure is None, "failure": r.failure} for r in results],
    }


@router.get("/api/v1/rules", tags=["rules"], summary="Every loaded rule, with its effective state")
def list_rules(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    catalog = request.app.state.services.rules
    return {
        "rules": [_rule_dict(r, on) for r, on in catalog.rules()],
        "errors": [str(e) for e in catalog.ruleset().errors],
    }


def set_enabled(request: Request, principal: Principal, rule_id: str, enabled: bool) -> Rule:
    services = request.app.state.services
    rule = services.rules.get(rule_id)
    if rule is None:
        raise HTTPException(404, f"no rule {rule_id}")
    services.rules.state.set_enabled(rule_id, enabled, principal.name)
    action = "rule.enable" if enabled else "rule.disable"
    services.audit.record(
        audit_event(
            action,
            actor=principal.name,
            source_ip=client_ip(request),
            target_type="rule",
            target_id=rule.id,
            target_name=rule.title,
            message=f"{principal.name} {action.split('.')[1]}d rule {rule.title}",
        )
    )
    return rule


@router.post(
    "/api/v1/rules/{rule_id}/{action}",
    tags=["rules"],
    summary="enable / disable a rule (admin), or test: run its vectors (responder)",
)
def change_rule(
    request: Request, rule_id: str, action: str, principal: Annotated[Principal, Depends(responder)]
) -> dict[str, Any]:
    if action == "test":
        if request.app.state.services.rules.get(rule_id) is None:
            raise HTTPException(404, f"no rule {rule_id}")
        return _results(request.app.state.services.rules.test(rule_id))
    if action not in ("enable", "disable"):
        raise HTTPException(404, "unknown action (enable, disable, test)")
    if not principal.can("admin"):
        raise HTTPException(403, "the admin role is needed")
    rule = set_enabled(request, principal, rule_id, action == "enable")
    return _rule_dict(rule, action == "enable")


@router.post("/api/v1/rules/test", tags=["rules"], summary="Run every rule's vectors (responder)")
def test_all(request: Request, principal: Annotated[Principal, Depends(responder)]) -> dict[str, Any]:
    return _results(request.app.state.services.rules.test(None))


@router.get("/rules", include_in_schema=False)
def rules_page(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> Response:
    catalog = request.app.state.services.rules
    return render(request, "rules.html", rules=catalog.rules(), errors=catalog.ruleset().errors, results=None)


@router.post("/rules/{rule_id}/{action}", include_in_schema=False)
def rule_form(
    request: Request, rule_id: str, action: str, principal: Annotated[Principal, Depends(responder)]
) -> Response:
    catalog = request.app.state.services.rules
    if action == "test":
        if catalog.get(rule_id) is None:
            raise HTTPException(404, f"no rule {rule_id}")
        return render(
            request,
            "rules.html",
            rules=catalog.rules(),
            errors=catalog.ruleset().errors,
            results=_results(catalog.test(rule_id)),
            tested=rule_id,
        )
    if action not in ("enable", "disable"):
        raise HTTPException(404, "unknown action")
    if not principal.can("admin"):
        raise HTTPException(403, "the admin role is needed")
    set_enabled(request, principal, rule_id, action == "enable")
    return RedirectResponse("/rules", status_code=303)
