"""The ``auth: keystone:`` settings: defaults, the role mapping rules, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from stackwatch.api.keystone_auth import TENANT, NotMapped, map_role
from stackwatch.api.keystone_client import TokenInfo
from stackwatch.api.keystone_settings import AuthSettings, KeystoneSettings, RoleRule
from stackwatch.config.loader import parse_config
from stackwatch.core.errors import ConfigError

URL = "https://keystone.example.net:5000/v3"


def _token(roles: set[str], *, system: bool = False, project: str | None = None,
           project_id: str = "p-1", domain: str = "Default") -> TokenInfo:
    return TokenInfo(user_id="u-1", user_name="u", user_domain="default", user_domain_name="Default",
                     expires=datetime.now(UTC), roles=frozenset(roles), system=system,
                     project_id=project_id if project else None, project_name=project,
                     project_domain="default" if project else None,
                     project_domain_name=domain if project else None)


@pytest.mark.parametrize(("token", "role"), [
    (_token({"admin", "member", "reader"}, system=True), "admin"),
    (_token({"reader"}, system=True), "viewer"),
    (_token({"member", "reader"}, project="security"), "responder"),
    (_token({"reader"}, project="security"), "viewer"),
    (_token({"admin", "member", "reader"}, project="webshop"), TENANT),  # a project's admin: a tenant
    (_token({"member"}, project="security", domain="other"), TENANT),  # same name, another domain
])
def test_the_default_mapping(token: TokenInfo, role: str) -> None:
    assert map_role(token, KeystoneSettings(url=URL)) == role


def test_the_security_project_may_be_given_by_id() -> None:
    settings = KeystoneSettings(url=URL, security_project="p-sec")
    assert map_role(_token({"member"}, project="anything", project_id="p-sec"), settings) == "responder"


def test_a_token_neither_mapped_nor_project_scoped_is_refused() -> None:
    with pytest.raises(NotMapped):
        map_role(_token({"member"}), KeystoneSettings(url=URL))


def test_rules_with_a_domain_condition() -> None:
    settings = KeystoneSettings(url=URL, roles=(RoleRule("reader", "viewer", domain="Default"),))
    assert map_role(_token({"reader"}, project="x"), settings) == "viewer"
    assert map_role(_token({"reader"}, project="x", domain="Other"), settings) == TENANT


def test_the_auth_section_loads_through_serves_config_loader() -> None:
    settings = parse_config(f"auth:\n  keystone:\n    url: {URL}\n    cache: 45s\n")
    assert isinstance(settings.auth, AuthSettings) and settings.auth.keystone.cache == 45.0


@pytest.mark.parametrize(("mapping", "message"), [
    ({"url": "keystone:5000"}, "url must be"),
    ({"url": URL, "cache": "10m"}, "cache must be at most"),
    ({"url": URL, "tiemout": 3}, "unknown setting 'tiemout'"),
    ({"url": URL, "roles": [{"role": "admin", "grants": "root"}]}, "grants must be one of"),
    ({"url": URL, "roles": [{"role": "admin", "grants": "admin", "system": "yes"}]}, "system must be"),
    ({"url": URL, "service_user": {"name": "sw", "password": "literal"}}, "must be references"),
])
def test_bad_settings_are_clear_errors(mapping: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        KeystoneSettings.from_mapping(mapping, "stackwatch.yaml")


def test_a_projects_resources_come_from_the_configured_ledger(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from stackwatch.api.keystone_auth import KeystoneAuth
    from stackwatch.respond.ledger import Ledger, Resource

    ledger = Ledger()
    ledger.add(Resource(type="instance", id="vm-1", project="p-1"))
    ledger.add(Resource(type="floatingip", id="fip-1", project="p-1",
                        extra={"floating_ip_address": "203.0.113.5"}))
    ledger.add(Resource(type="instance", id="vm-2", project="p-2"))
    ledger.save(tmp_path / "state" / "respond" / "ledger.json")
    auth = KeystoneAuth(KeystoneSettings(url=URL, ledger=tmp_path / "state" / "respond" / "ledger.json"),
                        tmp_path / "data")
    scope = auth.scope_for(_token({"member"}, project="webshop", project_id="p-1"))
    assert scope.resources == {"vm-1", "fip-1"} and scope.addresses == {"203.0.113.5"}
    assert scope.users == {"u-1"}  # without a service user: the user logging in only
