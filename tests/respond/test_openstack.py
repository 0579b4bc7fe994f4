"""openstack: owner checks, confirmation and the reconciliation sweep, through openstacksdk."""

from __future__ import annotations

from stackwatch.respond.ledger import Resource
from stackwatch.respond.openstack import Cloud
from stackwatch.respond.orphans import Orphan
from tests.respond.conftest import build_world
from tests.respond.fake_openstack import FakeOpenStack


def test_owner_exists_until_keystone_answers_404(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    assert cloud.owner_exists("project", world.project)
    del api.projects[world.project]
    assert not cloud.owner_exists("project", world.project)
    assert cloud.owner_exists("user", world.user)
    assert not cloud.owner_exists("domain", "gone-domain")


def test_list_resources_reads_every_project(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    found = {(r.type, r.id): r for r in cloud.list_resources()}
    server = found[("instance", world.servers[0])]
    assert (server.project, server.user, server.host) == (world.project, world.user, "cmp1")
    volume = found[("volume", world.volume)]
    assert volume.status == "in-use" and volume.attachments[0]["server"] == world.servers[0]
    assert found[("floatingip", world.fips[0])].extra["port_id"] == world.ports[0]
    assert ("instance", world.live_server) in found


def test_confirm_keeps_only_what_is_still_alive(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    del api.projects[world.project]
    del api.servers[world.servers[1]]  # already gone since the notification
    listed = [Resource(type="instance", id=s) for s in world.servers]
    listed.append(Resource(type="volume", id=world.volume))
    confirmed = cloud.confirm(Orphan("project", world.project, listed))
    assert confirmed.confirmed
    assert [(r.type, r.id) for r in confirmed.resources] == [("instance", world.servers[0]),
                                                              ("volume", world.volume)]


def test_confirm_refuses_when_the_owner_exists(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    api.projects[world.project]["enabled"] = False  # disabled is not deleted
    listed = [Resource(type="instance", id=world.servers[0])]
    confirmed = cloud.confirm(Orphan("project", world.project, listed))
    assert not confirmed.confirmed and confirmed.resources == []
    assert "still exists" in confirmed.note


def test_confirm_drops_resources_now_owned_by_someone_else(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    del api.projects[world.project]
    api.floatingips[world.fips[1]]["project_id"] = world.live_project  # reallocated meanwhile
    listed = [Resource(type="floatingip", id=world.fips[1])]
    confirmed = cloud.confirm(Orphan("project", world.project, listed))
    assert confirmed.resources == []


def test_sweep_finds_a_deletion_whose_notification_was_missed(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    assert cloud.sweep() == []
    del api.projects[world.project]
    (orphan,) = cloud.sweep()
    assert (orphan.owner_kind, orphan.owner_id, orphan.source) == ("project", world.project, "sweep")
    ids = {r.id for r in orphan.resources}
    assert ids == {*world.servers, world.volume, *world.ports, *world.fips, world.router_port}
    assert world.live_server not in ids


def test_sweep_finds_a_deleted_user_in_a_live_project(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    del api.users[world.user]
    (orphan,) = cloud.sweep()
    assert orphan.key == f"user:{world.user}"
    assert {r.id for r in orphan.resources} == {*world.servers, world.volume}


def test_sweep_confirms_each_owner_with_a_direct_get(api: FakeOpenStack, cloud: Cloud):
    world = build_world(api)
    del api.projects[world.project]
    cloud.sweep()
    assert ("GET", f"/identity/v3/projects/{world.project}") in api.requests
