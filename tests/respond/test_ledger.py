"""ledger: resource lifecycles from notifications, keyed by owner; bounded and persistable."""

from __future__ import annotations

import json
from pathlib import Path

from stackwatch.parsers.base import ParseContext
from stackwatch.parsers.notification import normalize_notification
from stackwatch.respond.ledger import Ledger, Resource
from tests.parsers.test_notification import NOVA_SAMPLES, resolve_refs
from tests.respond.conftest import (
    floatingip_created,
    instance_created,
    instance_deleted,
    keystone_cadf,
    notify,
    volume_attached,
)

P, U = "p" * 32, "u" * 32


def _sample(corpus: Path, name: str):
    base = corpus / NOVA_SAMPLES
    msg = resolve_refs(json.loads((base / name).read_text()), base)
    (event,) = normalize_notification(msg, json.dumps(msg), ParseContext(origin="test"))
    return event


def test_legacy_instance_create_then_delete():
    ledger = Ledger()
    ledger.apply(instance_created("i-1", P, U, name="web-1", host="cmp3"))
    (inst,) = ledger.owned_by("project", P)
    assert (inst.type, inst.id, inst.name, inst.host, inst.user) == ("instance", "i-1", "web-1", "cmp3", U)
    ledger.apply(instance_deleted("i-1", P, U))
    assert ledger.owned_by("project", P) == []


def test_versioned_samples_create_attach_delete(corpus):
    ledger = Ledger()
    ledger.apply(_sample(corpus, "instance-create-end.json"))
    inst = ledger.get("instance", "178b0921-8f85-4257-88b6-2e743b5a975c")
    assert inst is not None and inst.host == "compute" and inst.project == "6f70656e737461636b20342065766572"
    ledger.apply(_sample(corpus, "instance-volume_attach-end.json"))
    volume = ledger.get("volume", "a07f71dc-8151-4e7d-a0cc-cd24a3f11113")
    assert volume is not None and volume.attachments[0]["server"] == inst.id
    ledger.apply(_sample(corpus, "instance-delete-end.json"))
    assert ledger.get("instance", inst.id) is None
    assert ledger.get("volume", volume.id).attachments == []


def test_volume_attachment_shows_on_both_sides():
    ledger = Ledger()
    ledger.apply(instance_created("i-1", P, U))
    ledger.apply(volume_attached("v-1", "i-1", P, U))
    inst, vol = ledger.owned_by("project", P)
    assert inst.attachments == [{"volume": "v-1", "device": "/dev/vdb"}]
    assert vol.attachments[0] == {"server": "i-1", "device": "/dev/vdb", "host": "cmp1",
                                  "attachment": "att-1"}


def test_volume_detach_and_delete():
    ledger = Ledger()
    ledger.apply(volume_attached("v-1", "i-1", P, U))
    ledger.apply(notify("volume.detach.end", {"tenant_id": P, "user_id": U, "volume_id": "v-1",
                                              "status": "available", "volume_attachment": []}))
    assert ledger.get("volume", "v-1").attachments == []
    ledger.apply(notify("volume.delete.end", {"tenant_id": P, "user_id": U, "volume_id": "v-1"}))
    assert ledger.get("volume", "v-1") is None


def test_ports_and_floating_ips():
    ledger = Ledger()
    ledger.apply(notify("port.create.end", {"port": {"id": "port-1", "project_id": P, "device_id": "i-1",
                                                     "device_owner": "compute:nova",
                                                     "binding:host_id": "cmp2"}}, publisher="network.ctl1"))
    ledger.apply(floatingip_created("fip-1", P, "172.24.4.7"))
    ledger.apply(notify("floatingip.update.end", {"floatingip": {"id": "fip-1", "project_id": P,
                                                                 "floating_ip_address": "172.24.4.7",
                                                                 "port_id": "port-1"}}))
    fip = ledger.get("floatingip", "fip-1")
    assert fip.name == "172.24.4.7" and fip.extra["port_id"] == "port-1"
    assert ledger.get("port", "port-1").host == "cmp2"
    ledger.apply(notify("floatingip.delete.end", {"floatingip_id": "fip-1"}))
    ledger.apply(notify("port.delete.end", {"port_id": "port-1"}))
    assert len(ledger) == 0


def test_images_by_owner():
    ledger = Ledger()
    ledger.apply(notify("image.create", {"id": "img-1", "name": "golden", "owner": P, "status": "queued"},
                        publisher="image.ctl1"))
    assert [r.id for r in ledger.owned_by("project", P)] == ["img-1"]
    ledger.apply(notify("image.delete", {"id": "img-1", "owner": P}, publisher="image.ctl1"))
    assert ledger.owned_by("project", P) == []


def test_keyed_by_user_and_by_domain():
    ledger = Ledger()
    ledger.apply(instance_created("i-1", P, U))
    ledger.apply(instance_created("i-2", P, "other-user"))
    ledger.set_project_domain(P, "dom-1")
    assert [r.id for r in ledger.owned_by("user", U)] == ["i-1"]
    assert [r.id for r in ledger.owned_by("domain", "dom-1")] == ["i-1", "i-2"]
    assert ledger.owned_by("domain", "dom-2") == []


def test_project_domain_learned_from_creation_event_when_it_carries_one():
    event = keystone_cadf("created", "project", P)
    from stackwatch.core.event import replace

    Ledger().apply(event)  # keystone's own events carry no domain: nothing learned, nothing breaks
    ledger = Ledger()
    ledger.apply(replace(event, attrs={**event.attrs, "domain_id": "dom-9"}))
    assert ledger.project_domain(P) == "dom-9"


def test_cap_evicts_least_recently_touched_and_counts():
    ledger = Ledger(cap=2)
    for i in range(3):
        ledger.apply(instance_created(f"i-{i}", P, U))
    assert len(ledger) == 2 and ledger.evicted == 1
    assert ledger.get("instance", "i-0") is None


def test_unrelated_events_are_ignored():
    ledger = Ledger()
    event = notify("compute.instance.power_off.end", {"instance_id": "i-1", "tenant_id": P})
    assert ledger.apply(event) is False
    assert len(ledger) == 0


def test_snapshot_round_trip(tmp_path):
    ledger = Ledger()
    ledger.apply(instance_created("i-1", P, U))
    ledger.apply(volume_attached("v-1", "i-1", P, U))
    ledger.set_project_domain(P, "dom-1")
    ledger.save(tmp_path / "respond" / "ledger.json")
    loaded = Ledger.load(tmp_path / "respond" / "ledger.json")
    assert loaded.owned_by("domain", "dom-1") == ledger.owned_by("domain", "dom-1")
    assert isinstance(loaded.get("volume", "v-1"), Resource)


def test_load_without_snapshot_is_empty(tmp_path):
    assert len(Ledger.load(tmp_path / "none.json")) == 0


def _attached_servers(ledger: Ledger, volume: str) -> list[str]:
    return [a["server"] for a in ledger.get("volume", volume).attachments]


def test_deleting_an_instance_detaches_only_its_volumes():
    ledger = Ledger()
    for inst, vol in (("i-1", "v-1"), ("i-2", "v-2")):
        ledger.apply(instance_created(inst, P, U))
        ledger.apply(volume_attached(vol, inst, P, U))
    ledger.apply(instance_deleted("i-1", P, U))
    assert (_attached_servers(ledger, "v-1"), _attached_servers(ledger, "v-2")) == ([], ["i-2"])


def test_deleting_an_instance_detaches_volumes_loaded_from_a_snapshot(tmp_path):
    # the volumes an instance deletion touches are found through an index add() keeps
    ledger = Ledger()
    ledger.apply(instance_created("i-1", P, U))
    ledger.apply(volume_attached("v-1", "i-1", P, U))
    ledger.save(tmp_path / "ledger.json")
    loaded = Ledger.load(tmp_path / "ledger.json")
    loaded.apply(instance_deleted("i-1", P, U))
    assert _attached_servers(loaded, "v-1") == []


def test_the_attachment_index_is_rebuilt_past_its_bound():
    ledger = Ledger(cap=4)
    for i in range(12):  # servers come and go without deletions: stale index entries pile up
        ledger.apply(volume_attached(f"v-{i % 2}", f"i-{i}", P, U))
    ledger.apply(volume_attached("v-1", "i-99", P, U))
    ledger.apply(instance_deleted("i-99", P, U))
    assert _attached_servers(ledger, "v-1") == []
    assert len(ledger._attached) <= 4


def test_an_instance_lists_every_attached_volume_in_ledger_order():
    ledger = Ledger()
    ledger.apply(instance_created("i-1", P, U))
    ledger.apply(instance_created("i-2", P, U))
    for volume, server in (("v-1", "i-1"), ("v-2", "i-2"), ("v-3", "i-1")):
        ledger.apply(volume_attached(volume, server, P, U))
    inventory = {r.id: r for r in ledger.owned_by("project", P)}
    assert [a["volume"] for a in inventory["i-1"].attachments] == ["v-1", "v-3"]
    assert [a["volume"] for a in inventory["i-2"].attachments] == ["v-2"]
