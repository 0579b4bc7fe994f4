"""keystone_fields: what keystone's log messages mean."""

from __future__ import annotations

import pytest

from stackwatch.parsers import keystone
from stackwatch.parsers.keystone import keystone_fields

REQUIRES_AUTH = "Authorization failed. The request you have made requires authentication."
LOGGERS = ["keystone.common.wsgi", "keystone.server.flask.application"]


@pytest.mark.parametrize("logger", LOGGERS)
@pytest.mark.parametrize(("message", "ip"), [
    (f"{REQUIRES_AUTH} from 172.16.1.5", "172.16.1.5"),
    ("Authorization failed. The request you have made requires authentication. from 10.10.31.166: "
     "Unauthorized: The request you have made requires authentication.", "10.10.31.166"),
    ("Authorization failed. The request you have made requires authentication. from 2001:db8::5: "
     "Unauthorized: The request you have made requires authentication.", "2001:db8::5"),
    (f"{REQUIRES_AUTH} from 2001:db8::5", "2001:db8::5"),
    ("Authorization failed. Could not find token from cache. from 10.0.0.1", "10.0.0.1"),
])
def test_authorization_failed_gives_authenticate_failure_and_ip(logger, message, ip):
    fields = keystone_fields(logger, message)
    assert fields["action"] == "authenticate"
    assert fields["outcome"] == "failure"
    assert fields["initiator"].source_ip == ip


@pytest.mark.parametrize(("message", "name"), [
    ("Could not find user: root", "root"),
    ("Could not find user: admin.", "admin"),
])
def test_could_not_find_user(message, name):
    fields = keystone_fields("keystone.auth.plugins.core", message)
    assert fields["action"] == "user.not_found"
    assert fields["initiator"].name == name


@pytest.mark.parametrize(("message", "action"), [
    ("Authorization failed. The account is locked for user: 3c5f. from 10.0.0.7", "account.locked"),
    ("The account is locked for user: 3c5f.", "account.locked"),
    ("Authorization failed. The password is expired and needs to be changed for user: 3c5f. from 10.0.0.8",
     "password.expired"),
    ("Password for user 3c5f expired and must be changed", "password.expired"),
    ("Failed to validate token", "token.validate"),
    ("Token not found", "token.validate"),
    ("Could not recognize Fernet token", "token.validate"),
])
def test_account_state_and_token_failures(message, action):
    fields = keystone_fields("keystone.server.flask.application", message)
    assert fields["action"] == action
    assert fields["outcome"] == "failure"


@pytest.mark.parametrize("message", [
    "POST http://controller:5000/v3/auth/tokens",
    "Authorization failed.",  # no address: not the contract line
    "Loaded 2 encryption keys (max_active_keys=3) from: /etc/keystone/fernet-keys/",
])
def test_other_messages_mean_nothing_special(message):
    assert keystone_fields("keystone.common.wsgi", message) is None


def test_literal_gates_cover_every_marker():
    """keystone_fields tests a cheap gate word before scanning for the markers: every marker
    must contain its gate word, or a message naming it would be missed."""
    assert all("oken" in marker for marker in keystone._TOKEN_FAILURES)
    assert all("locked" in marker or "exceeded" in marker for marker in keystone._LOCKED)
    assert all("expired" in marker for marker in keystone._EXPIRED)


def test_token_gate_covers_every_marker_but_not_token_urls():
    """The token-failure gate is ' token' / 'oken ': every marker has one; the '/v3/auth/tokens'
    of keystone's request lines has neither (so those lines skip the marker scan)."""
    assert all(" token" in marker or "oken " in marker for marker in keystone._TOKEN_FAILURES)
    line = "POST http://controller:5000/v3/auth/tokens"
    assert " token" not in line and "oken " not in line


@pytest.mark.parametrize(("message", "action"), [
    ("LOGIN ATTEMPTS EXCEEDED for user: 3c5f", "account.locked"),
    ("The Password Is Expired for user: 3c5f", "password.expired"),
    ("Invalid user token", "token.validate"),
])
def test_markers_match_past_the_gates(message, action):
    assert keystone_fields("keystone.common.wsgi", message)["action"] == action
