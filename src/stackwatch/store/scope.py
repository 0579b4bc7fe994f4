"""What a tenant may read: the explicit filter every scoped store read carries.

A ``Scope`` names one keystone project and what stackwatch knows belongs to it: its users'
ids (keystone failures against them are about the project), the resources the orphan ledger
holds for it (instances, volumes, ports, floating IPs: their ids) and its addresses (floating
and fixed IPs of its ports). A read with a scope returns only rows about the project; a read
without one (``scope=None``) is the operators' unrestricted view.

Each backend applies it in one place per kind of row (events, alerts), so a new backend
ports it as one function: an event is in scope when its initiator's project is the project,
its target is the project or one of its resources, its initiator is one of the project's
users (by id, or by name *and* domain: keystone's failures against a user it cannot resolve
carry only the name the client gave, with its domain), or its initiator address is one of the
project's addresses. An alert is in scope when its project is the project, its user is one of
the project's users (by id, or by name with the domain the alert recorded in
``details.user_domain``), its source address is one of the project's addresses, or its
grouping key is one of its resources or addresses.

A name alone is never enough: user names are unique per keystone domain only, so a failure
against ``alice`` of another domain (or of no stated domain) is not the project's ``alice``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from stackwatch.core.errors import StoreError

TENANT_HOST_PREFIX: Final = "tenant/"
"""Events from tenants' own instances (sources/tenant_syslog.py) have hosts under this prefix:
``tenant/<project>/<host>``; the infrastructure's views leave them out (api/scoped.py)."""
TENANT_ATTR: Final = "tenant_project"
"""The attribute every event from a tenant's instance carries: the project that sent it."""
MAX_SCOPE_ITEMS: Final = 20_000
"""Most ids a scope may list per kind (a big project's ports and volumes fit many times)."""
MAX_ID: Final = 255


class ScopeError(StoreError, ValueError):
    """A scope is malformed (empty project, too many or too long ids)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """One project's view. Ids are compared exactly (keystone and nova ids are case-sensitive)."""

    project: str
    users: frozenset[str] = field(default_factory=frozenset)
    """Keystone user ids of the project's members."""
    named_users: frozenset[tuple[str, str]] = field(default_factory=frozenset)
    """(user name, domain id) of the project's members."""
    resources: frozenset[str] = field(default_factory=frozenset)
    """Ids of the project's instances, volumes, ports and floating IPs."""
    addresses: frozenset[str] = field(default_factory=frozenset)
    """The project's floating and fixed IP addresses."""

    def __post_init__(self) -> None:
        if not isinstance(self.project, str) or not 0 < len(self.project) <= MAX_ID:
            raise ScopeError("a scope needs a project id of 1..255 characters")
        for name in ("users", "resources", "addresses"):
            values = getattr(self, name)
            if not isinstance(values, frozenset):
                raise ScopeError(f"scope {name} must be a frozenset")
            if len(values) > MAX_SCOPE_ITEMS:
                raise ScopeError(f"a scope lists at most {MAX_SCOPE_ITEMS} {name}")
            if any(not isinstance(v, str) or not v or len(v) > MAX_ID for v in values):
                raise ScopeError(f"scope {name} must be non-empty strings of at most {MAX_ID} characters")
        if not isinstance(self.named_users, frozenset) or len(self.named_users) > MAX_SCOPE_ITEMS:
            raise ScopeError(f"scope named_users must be a frozenset of at most {MAX_SCOPE_ITEMS} pairs")
        if any(not isinstance(pair, tuple) or len(pair) != 2
               or any(not isinstance(v, str) or not v or len(v) > MAX_ID for v in pair)
               for pair in self.named_users):
            raise ScopeError(f"scope named_users must be (name, domain) pairs of 1..{MAX_ID} characters")

    def event_ids(self) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
        """(target ids, initiator ids, initiator addresses) an event in scope may carry."""
        return self.resources | {self.project}, self.users, self.addresses

    def alert_keys(self) -> frozenset[str]:
        """Grouping keys that make an alert about the project."""
        return self.resources | self.addresses
