"""What keystone's (and keystonemiddleware's) log messages mean.

oslo_log calls ``keystone_fields(logger, message)`` for every ``keystone*`` logger and
merges the result into the event. Recognised (see the field contract):

* ``Authorization failed. <exception> from <ip>[: Unauthorized: ...]`` (loggers
  keystone.common.wsgi and keystone.server.flask.application): ``authenticate`` /
  ``failure``, or ``account.locked`` / ``password.expired`` when the exception says so.
* ``Could not find user: <name>``: ``user.not_found`` with initiator.name.
* account locked / password expired messages on their own.
* token validation failures (``Failed to validate token``, ``Token not found``,
  ``Could not recognize Fernet token``, keystonemiddleware ``Authorization failed for
  token``...): ``token.validate`` / ``failure``.
"""

from __future__ import annotations

import re
from typing import Any

from stackwatch.core.event import Initiator, Target

# Lazy reason so the first ' from <ip>' that ends the line (optionally followed by the
# exception's ': Unauthorized: ...' text) is taken, whatever the reason text contains.
# Since 2024 oslo.log names the exception by its module path ('keystone.exception.Unauthorized').
_EXCEPTION_SUFFIX = r"(?:: (?P<exc>[\w.]+): (?P<detail>.*))?"
_AUTH_FAILED = re.compile(
    r"Authorization failed\.?\s*(?P<reason>.*?)\s+from (?P<ip>\S+?)" + _EXCEPTION_SUFFIX + ":?$",
    re.DOTALL,
)
# 'Could not find user: root' (old) or 'Could not find user: root.: keystone.exception.UserNotFound:
# Could not find user: root.' (keystone 2024.1 on): the name ends at the exception suffix.
_USER_NOT_FOUND = re.compile(r"Could not find user: (?P<name>.+?)\.?(?:: [\w.]*NotFound: .*)?$")
_USER_ID = re.compile(r"for user:? (?P<id>[\w\-]+)")
_LOCKED = ("account is locked", "login attempts exceeded")
_EXPIRED = ("password is expired", "expired and must be changed")
_TOKEN_FAILURES = (
    "Failed to validate token",
    "Token not found",
    "Could not find token",
    "Could not recognize Fernet token",
    "Authorization failed for token",
    "Invalid user token",
    "Token is expired",
    "token is expired",
)


def _account_state_action(text: str) -> str | None:
    # Every keystone line comes here: a literal gate (each marker contains its gate word)
    # spares the generator scans on the lines that mention neither.
    lowered = text.lower()
    if ("locked" in lowered or "exceeded" in lowered) and any(marker in lowered for marker in _LOCKED):
        return "account.locked"
    if "expired" in lowered and any(marker in lowered for marker in _EXPIRED):
        return "password.expired"
    return None


def _user_target(text: str) -> Target | None:
    match = _USER_ID.search(text)
    return Target(type="user", id=match.group("id")) if match else None


def keystone_fields(logger: str, message: str) -> dict[str, Any] | None:
    """Contract fields for one keystone log message (first line only), or None."""
    if message.startswith("Authorization failed"):
        match = _AUTH_FAILED.match(message)
        if match is not None:
            reason = match.group("reason").strip()
            fields: dict[str, Any] = {
                "action": _account_state_action(reason) or "authenticate",
                "outcome": "failure",
                "initiator": Initiator(source_ip=match.group("ip").rstrip(":")),
                "attrs": {"reason": reason},
                "severity": "warning",
            }
            if match.group("exc"):
                fields["attrs"]["exception"] = match.group("exc").rpartition(".")[2]
            if fields["action"] != "authenticate" and (target := _user_target(reason)):
                # the locked/expired account is both what was refused and who tried to log in
                fields["target"] = target
                fields["initiator"] = Initiator(source_ip=match.group("ip").rstrip(":"), id=target.id)
            return fields
    if message.startswith("Could not find user"):
        match = _USER_NOT_FOUND.match(message)
        if match is not None:
            name = match.group("name").strip()
            return {"action": "user.not_found", "outcome": "failure", "initiator": Initiator(name=name),
                    "target": Target(type="user", name=name)}
    state = _account_state_action(message)
    if state is not None:
        fields = {"action": state, "outcome": "failure"}
        if target := _user_target(message):
            fields["target"] = target
            fields["initiator"] = Initiator(id=target.id)
        return fields
    # gate: every marker says " token" or "Token "/"token " (not the '/v3/auth/tokens' of request lines)
    if (" token" in message or "oken " in message) and any(marker in message for marker in _TOKEN_FAILURES):
        return {"action": "token.validate", "outcome": "failure"}
    return None
