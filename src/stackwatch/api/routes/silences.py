"""Silences: mute a rule (and key) for a while, with who and why. Muted alerts are still
stored, marked silenced, but no sink is called for them (pipeline/runner.py). Creating,
expiring and deleting a silence are audit events. Roles: anyone may list; responders and
admins create and expire; deleting (which removes it from the list) is for admins."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Body, Depends, Form, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from stackwatch.api.audit import audit_event
from stackwatch.api.auth import Principal, admin, client_ip, responder, viewer
from stackwatch.api.params import parse_span
from stackwatch.store.base import MAX_FIELD, MAX_SILENCE_REASON, NotFoundError, Silence
from stackwatch.web.render import render

router = APIRouter()
MAX_DURATION: Final = timedelta(days=90)
DURATIONS: Final = ("30m", "1h", "4h", "12h", "1d", "7d")


def silence_dict(silence: Silence, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": silence.id,
        "rule": silence.rule,
        "key": silence.key,
        "created": silence.created.isoformat(),
        "created_by": silence.created_by,
        "reason": silence.reason,
        "ends": silence.ends.isoformat(),
        "expired": silence.expired.isoformat() if silence.expired else None,
        "expired_by": silence.expired_by,
        "active": silence.active(now or datetime.now(UTC)),
    }


def _title(request: Request, rule_id: str) -> str:
    rule = request.app.state.services.rules.get(rule_id)
    return rule.title if rule is not None else rule_id


def create_silence(request: Request, principal: Principal, rule: str, key: str, duration: str,
                   reason: str) -> Silence:
    rule, key, reason = rule.strip(), key.strip(), reason.strip()
    if not rule or len(rule) > MAX_FIELD or len(key) > MAX_FIELD:
        raise HTTPException(400, f"rule is required; rule and key at most {MAX_FIELD} characters")
    if not reason or len(reason) > MAX_SILENCE_REASON:
        raise HTTPException(400, f"say why (reason, at most {MAX_SILENCE_REASON} characters)")
    span = parse_span(duration)
    if span > MAX_DURATION:
        raise HTTPException(400, f"a silence lasts at most {MAX_DURATION.days} days")
    services = request.app.state.services
    silence = services.store.create_silence(rule, key, ends=datetime.now(UTC) + span, actor=principal.name,
                                            reason=reason)
    _audit(request, principal, "silence.create", silence,
           f"{principal.name} silenced {_title(request, rule)}{f' for {key}' if key else ''} "
           f"until {silence.ends:%Y-%m-%d %H:%M} UTC: {reason}")
    return silence


def end_silence(request: Request, principal: Principal, silence_id: int, action: str) -> Silence:
    """``expire`` (ends it now, keeps it listed) or ``delete``; audited."""
    store = request.app.state.services.store
    try:
        silence = (store.expire_silence(silence_id, actor=principal.name) if action == "expire"
                   else store.delete_silence(silence_id))
    except NotFoundError:
        raise HTTPException(404, f"no silence {silence_id}") from None
    verb = "expired" if action == "expire" else "deleted"
    _audit(request, principal, f"silence.{action}", silence,
           f"{principal.name} {verb} silence {silence_id} ({_title(request, silence.rule)})")
    return silence


def _audit(request: Request, principal: Principal, action: str, silence: Silence, message: str) -> None:
    request.app.state.services.audit.record(audit_event(
        action,
        actor=principal.name,
        source_ip=client_ip(request),
        target_type="silence",
        target_id=str(silence.id),
        target_name=f"{silence.rule}|{silence.key}",
        message=message,
        attrs={"rule": silence.rule, "key": silence.key, "ends": silence.ends.isoformat(),
               "reason": silence.reason},
    ))


# -- API -------------------------------------------------------------------------------------


@router.get("/api/v1/silences", tags=["silences"], summary="Every silence, newest first")
def list_silences(request: Request, principal: Annotated[Principal, Depends(viewer)]) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {"silences": [silence_dict(s, now) for s in request.app.state.services.store.silences()]}


@router.post("/api/v1/silences", tags=["silences"], status_code=201,
             summary="Mute a rule (and key) for a while (responder)")
def post_silence(
    request: Request,
    principal: Annotated[Principal, Depends(responder)],
    body: Annotated[dict[str, Any], Body(examples=[{"rule": "<rule id>", "key": "203.0.113.9",
                                                    "duration": "2h", "reason": "pen test"}])],
) -> dict[str, Any]:
    """``key`` '' (or absent) mutes every key of the rule; ``duration`` like 30m, 2h, 7d."""
    rule, key, duration, reason = (body.get("rule"), body.get("key", ""), body.get("duration"),
                                   body.get("reason"))
    if not (isinstance(rule, str) and isinstance(key, str) and isinstance(duration, str)
            and isinstance(reason, str)):
        raise HTTPException(400, "rule, duration and reason are required text; key is text")
    return silence_dict(create_silence(request, principal, rule, key, duration, reason))


@router.post("/api/v1/silences/{silence_id}/expire", tags=["silences"],
             summary="End a silence now (responder)")
def post_expire(request: Request, silence_id: int,
                principal: Annotated[Principal, Depends(responder)]) -> dict[str, Any]:
    return silence_dict(end_silence(request, principal, silence_id, "expire"))


@router.delete("/api/v1/silences/{silence_id}", tags=["silences"], summary="Delete a silence (admin)")
def delete_silence(request: Request, silence_id: int,
                   principal: Annotated[Principal, Depends(admin)]) -> dict[str, Any]:
    return silence_dict(end_silence(request, principal, silence_id, "delete"))


# -- pages -----------------------------------------------------------------------------------

Text = Annotated[str, Query(max_length=MAX_FIELD)]


@router.get("/silences", include_in_schema=False)
def silences_page(request: Request, principal: Annotated[Principal, Depends(viewer)], rule: Text = "",
                  key: Text = "") -> Response:
    now = datetime.now(UTC)
    found = request.app.state.services.store.silences()
    return render(request, "silences.html", now=now, durations=DURATIONS,
                  active=[s for s in found if s.active(now)], ended=[s for s in found if not s.active(now)],
                  titles={s.rule: _title(request, s.rule) for s in found},
                  form={"rule": rule, "key": key, "title": _title(request, rule) if rule else ""})


@router.post("/silences", include_in_schema=False)
def silence_form(
    request: Request,
    principal: Annotated[Principal, Depends(responder)],
    rule: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    key: Annotated[str, Form(max_length=MAX_FIELD)] = "",
    duration: Annotated[str, Form(max_length=16)] = "1h",
    reason: Annotated[str, Form(max_length=MAX_SILENCE_REASON)] = "",
) -> Response:
    create_silence(request, principal, rule, key, duration, reason)
    return RedirectResponse("/silences", status_code=303)


@router.post("/silences/{silence_id}/expire", include_in_schema=False)
def expire_form(request: Request, silence_id: int,
                principal: Annotated[Principal, Depends(responder)]) -> Response:
    end_silence(request, principal, silence_id, "expire")
    return RedirectResponse("/silences", status_code=303)


@router.post("/silences/{silence_id}/delete", include_in_schema=False)
def delete_form(request: Request, silence_id: int,
                principal: Annotated[Principal, Depends(admin)]) -> Response:
    end_silence(request, principal, silence_id, "delete")
    return RedirectResponse("/silences", status_code=303)
