"""The OpenStack API side, through openstacksdk: confirmation and the reconciliation sweep.

Credentials come from clouds.yaml (``Cloud.connect("mycloud")`` = ``openstack.connect(cloud=...)``);
tests pass explicit auth. Nothing here changes the cloud: actions.py does, after these checks.

- ``owner_exists``: a GET on the project/user/domain; only a 404 means gone. Any other error
  propagates, because acting on an owner we are unsure about is worse than not acting.
- ``confirm``: an orphan from a notification is real when its owner is gone and, per resource,
  the resource still exists (a fresh view from the API replaces the ledger's).
- ``sweep``: lists projects, users and domains and every server, volume, floating IP and port,
  and finds resources whose owner no longer exists (deletions whose notification was missed);
  each candidate owner is confirmed with a direct GET before it is reported.

openstacksdk is imported lazily: it is an optional dependency (the ``openstack`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stackwatch.core.errors import StackwatchError
from stackwatch.respond.ledger import Resource
from stackwatch.respond.orphans import Orphan

if TYPE_CHECKING:
    from openstack.connection import Connection

USER_RESOURCES = ("instance", "volume")
"""Resource types that record the user who created them (neutron records only the project)."""
_ATTACHMENT_KEYS = (("server", "server_id"), ("device", "device"), ("host", "host_name"),
                    ("attachment", "attachment_id"))


def _sdk() -> Any:
    try:
        import openstack
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise RuntimeError("the OpenStack response needs openstacksdk: pip install 'stackwatch[openstack]'") \
            from exc
    return openstack


def not_found_error() -> type[Exception]:
    return _sdk().exceptions.NotFoundException  # type: ignore[no-any-return]


def server_resource(server: Any) -> Resource:
    return Resource(type="instance", id=server.id, name=server.name, project=server.project_id,
                    user=server.user_id, host=server.compute_host, status=server.status,
                    attachments=[{"volume": v.id} for v in server.attached_volumes or ()])


def volume_resource(volume: Any) -> Resource:
    attachments = [{name: str(a[key]) for name, key in _ATTACHMENT_KEYS if a.get(key)}
                   for a in volume.attachments or ()]
    return Resource(type="volume", id=volume.id, name=volume.name, project=volume.project_id,
                    user=volume.user_id, host=volume.host, status=volume.status, attachments=attachments,
                    extra={"size": volume.size} if volume.size is not None else {})


def floatingip_resource(ip: Any) -> Resource:
    return Resource(type="floatingip", id=ip.id, name=ip.floating_ip_address, project=ip.project_id,
                    status=ip.status, extra={"floating_ip_address": ip.floating_ip_address or "",
                                             "port_id": ip.port_id or "",
                                             "fixed_ip_address": ip.fixed_ip_address or ""})


def port_resource(port: Any) -> Resource:
    return Resource(type="port", id=port.id, name=port.name or None, project=port.project_id,
                    host=port.binding_host_id or None, status=port.status,
                    extra={"device_id": port.device_id or "", "device_owner": port.device_owner or "",
                           "network_id": port.network_id or ""})


class Cloud:
    """One cloud, reached through an openstacksdk Connection."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    @classmethod
    def connect(cls, cloud: str | None = None, **auth: Any) -> Cloud:
        """``cloud``: a clouds.yaml entry. With explicit ``auth`` keys (auth_url, username...)
        clouds.yaml and the environment are not read (tests)."""
        openstack = _sdk()
        if auth:
            return cls(openstack.connect(load_yaml_config=False, load_envvars=False, **auth))
        from keystoneauth1.exceptions import MissingRequiredOptions
        from openstack.exceptions import ConfigException

        try:
            return cls(openstack.connect(cloud=cloud))
        except ConfigException as exc:  # a --cloud (or $OS_CLOUD) clouds.yaml does not hold
            raise StackwatchError(f"cloud {cloud or '$OS_CLOUD'}: {exc} (the clouds.yaml files read: "
                                  "./clouds.yaml, ~/.config/openstack/clouds.yaml, "
                                  "/etc/openstack/clouds.yaml, or $OS_CLIENT_CONFIG_FILE)") from None
        except MissingRequiredOptions as exc:  # no clouds.yaml entry and no OS_* variables
            raise StackwatchError(f"no cloud to connect to ({exc}): name a clouds.yaml entry with "
                                  "--cloud NAME or $OS_CLOUD, or set the OS_AUTH_URL... variables") from None

    # ------------------------------------------------------------------ owners

    def owner_exists(self, kind: str, ident: str) -> bool:
        """True unless the API answers 404 for the project/user/domain."""
        identity: Any = self.conn.identity  # typed as v2 | v3; keystone v3 is all we use
        getters = {"project": identity.get_project, "user": identity.get_user, "domain": identity.get_domain}
        try:
            getters[kind](ident)
        except not_found_error():
            return False
        return True

    # ------------------------------------------------------------------ resources

    def get_resource(self, type_: str, ident: str) -> Resource | None:
        """The resource as the API sees it now; None when it is gone (404)."""
        getters = {
            "instance": (self.conn.compute.get_server, server_resource),
            "volume": (self.conn.block_storage.get_volume, volume_resource),
            "floatingip": (self.conn.network.get_ip, floatingip_resource),
            "port": (self.conn.network.get_port, port_resource),
        }
        if type_ not in getters:
            return None
        get, convert = getters[type_]
        try:
            return convert(get(ident))
        except not_found_error():
            return None

    def list_resources(self) -> list[Resource]:
        """Every server, volume, floating IP and port of every project."""
        out = [server_resource(s) for s in self.conn.compute.servers(details=True, all_projects=True)]
        out += [volume_resource(v) for v in self.conn.block_storage.volumes(details=True, all_projects=True)]
        out += [floatingip_resource(ip) for ip in self.conn.network.ips()]
        out += [port_resource(p) for p in self.conn.network.ports()]
        return out

    # ------------------------------------------------------------------ confirm and sweep

    def confirm(self, orphan: Orphan) -> Orphan:
        """``orphan`` checked against the API: ``confirmed`` only when the owner is gone; its
        resources replaced by the API's view of those still alive and still owned by it."""
        if self.owner_exists(orphan.owner_kind, orphan.owner_id):
            return Orphan(orphan.owner_kind, orphan.owner_id, [], orphan.source, False,
                          f"{orphan.owner_kind} {orphan.owner_id} still exists")
        alive: list[Resource] = []
        for resource in orphan.resources:
            if resource.type == "image":  # not managed here: reported as the ledger saw it
                alive.append(resource)
                continue
            current = self.get_resource(resource.type, resource.id)
            if current is not None and still_owned(current, orphan.owner_kind, orphan.owner_id, resource):
                alive.append(current)
        return Orphan(orphan.owner_kind, orphan.owner_id, alive, orphan.source, True,
                      "" if alive else "every listed resource is already gone")

    def sweep(self) -> list[Orphan]:
        """Owners that no longer exist and the resources they left, found through the API."""
        identity: Any = self.conn.identity
        projects = {p.id for p in identity.projects()}
        users = self._ids(identity.users)
        resources = self.list_resources()
        candidates: dict[tuple[str, str], list[Resource]] = {}
        for resource in resources:
            if resource.project and resource.project not in projects:
                candidates.setdefault(("project", resource.project), []).append(resource)
            elif (users is not None and resource.type in USER_RESOURCES and resource.user
                  and resource.user not in users):
                candidates.setdefault(("user", resource.user), []).append(resource)
        found = []
        for (kind, owner), owned in sorted(candidates.items()):
            if not self.owner_exists(kind, owner):  # a direct GET: lists can be filtered or stale
                found.append(Orphan(kind, owner, owned, "sweep", True))
        return found

    @staticmethod
    def _ids(lister: Any) -> set[str] | None:
        """Ids from a keystone list; None when it cannot be listed (e.g. an LDAP backend that
        refuses), in which case that owner kind is not swept rather than all flagged."""
        try:
            return {item.id for item in lister()}
        except _sdk().exceptions.HttpException:
            return None


def still_owned(current: Resource, kind: str, owner: str, seen: Resource | None = None) -> bool:
    """Does ``current`` still belong to the deleted owner? For a domain, the resource's project
    must be the one the ledger saw (a domain id is not on the resource itself)."""
    if kind == "project":
        return current.project == owner
    if kind == "user":
        return current.user == owner if current.type in USER_RESOURCES else (
            seen is not None and current.project == seen.project)
    return seen is None or current.project == seen.project

