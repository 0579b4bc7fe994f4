"""Kernel and NetworkManager messages that matter for a cloud node's network and boot.

* ``Linux version 6.1.0-18-amd64 (...)`` -> ``system.boot`` (attrs.kernel_version).
* Bridge port state (net/bridge/br_stp.c ``br_info(br, "port %u(%s) entered %s state\\n")``;
  kernels before 3.x said ``entering``): ``br-ex: port 1(eth1) entered disabled state`` ->
  ``bridge.down`` (target bridge br-ex, attrs.port eth1, attrs.port_no); the other states
  (blocking, listening, learning, forwarding) -> ``bridge.port_state``. Linux bridges of
  Neutron (``qbr...``, ``brq...``) use the same wording.
* NIC link: e1000e/igb/ixgbe/i40e/ice/bnxt ``<drv> <pci> eth0: NIC Link is Down``, old
  ``e1000e: eth0 NIC Link is Down``, mlx5 ``... ens2f0np0: Link down``, tg3/phylib
  ``eth0: Link is Down``, bonding ``bond0: (slave eth1): link status definitely down`` ->
  ``link.down`` / ``link.up`` (target interface, attrs.driver). virtio_net logs no link
  changes of its own; a guest only sees the generic ``Link is Down`` / NetworkManager lines.
* netfilter LOG target: ``<prefix>IN=eth0 OUT= ... SRC= DST= PROTO= SPT= DPT=`` ->
  ``firewall.log`` (attrs.log_prefix, in, out, mac, src, dst, proto, spt, dpt, len, ttl, flags),
  initiator.source_ip = SRC, target host = DST.
* NetworkManager ``device (eth0): state change: activated -> unavailable (reason ...)``
  (and the 0.9/1.0 ``(eth0): device state change:`` wording, numeric states included) ->
  ``link.down`` when leaving ``activated`` for unavailable/disconnected/unmanaged.
"""

from __future__ import annotations

import re
from typing import Any

from stackwatch.core.event import Initiator, Target, normalize_severity
from stackwatch.parsers.hardware import kernel_fields as hardware_fields

Fields = dict[str, Any]

_BRIDGE = re.compile(r"(\S+): port (\d+)\((\S+)\) (?:entered|entering) (\w+) state")
_NIC_LINK = re.compile(
    r"(?:(?P<driver>[\w-]+) (?P<bus>[\w:.-]+) )?(?P<dev>[\w.@-]+): (?:(?:igb|ixgbe|e1000e?): [\w.@-]+ )?"
    r"(?:NIC )?[Ll]ink (?:is )?(?P<state>[Dd]own|[Uu]p)")
_NIC_LINK_OLD = re.compile(r"(?P<driver>[\w-]+): (?P<dev>[\w.@-]+) NIC Link is (?P<state>Down|Up)")
_BOND = re.compile(r"(\S+): (?:\((?:slave|link) (\S+)\): link status definitely (down|up)"
                   r"|link status definitely (down|up) for interface (\S+))")
_NETFILTER = re.compile(r"IN=\S* OUT=\S*")
_NM_PREFIX = re.compile(r"<(\w+)>\s+(?:\[[\d.]+\] )?")
_NM_STATE = re.compile(r"(?:device )?\((\S+)\): (?:device )?state change: (\S+) -> (\S+)"
                       r"(?: \(reason '?([^',)]*)'?)?")
# Numeric states of NetworkManager 0.9+ (and the small 0.8 numbers, which do not collide).
_NM_NUMERIC = {"0": "unknown", "10": "unmanaged", "20": "unavailable", "30": "disconnected",
               "40": "prepare", "50": "config", "60": "need-auth", "70": "ip-config", "80": "ip-check",
               "90": "secondaries", "100": "activated", "110": "deactivating", "120": "failed",
               "1": "unmanaged", "2": "unavailable", "3": "disconnected", "8": "activated", "9": "failed"}
_NM_DOWN = frozenset({"unavailable", "disconnected", "unmanaged"})

_FIREWALL_INTS = ("spt", "dpt", "len", "ttl", "type", "code")


def _firewall(message: str, start: int) -> Fields:
    attrs: dict[str, Any] = {"log_prefix": message[:start].strip()}
    flags: list[str] = []
    for token in message[start:].split():
        key, eq, value = token.partition("=")
        if not eq:
            flags.append(token)
            continue
        key = key.lower()
        if key in attrs:  # UDP's second LEN= and ICMP's ID= repeat keys: keep the first (IP header)
            continue
        if key in _FIREWALL_INTS and value.isdigit():
            attrs[key] = int(value)
        elif key in ("in", "out", "mac", "src", "dst", "proto", "id", "urgp", "mark", "physin", "physout"):
            attrs[key] = value
    if flags:
        attrs["flags"] = flags
    fields: Fields = {"action": "firewall.log", "attrs": attrs}
    if attrs.get("src"):
        fields["initiator"] = Initiator(source_ip=attrs["src"])
    if attrs.get("dst"):
        fields["target"] = Target(type="host", id=attrs["dst"])
    return fields


def _link(state: str, device: str, **attrs: Any) -> Fields:
    return {"action": "link.down" if state.lower() == "down" else "link.up",
            "target": Target(type="interface", name=device),
            "attrs": {k: v for k, v in attrs.items() if v is not None}}


def _kernel(message: str) -> Fields | None:
    if message.startswith("Linux version "):
        version = message[14:].split(" ", 1)[0]
        return {"action": "system.boot", "attrs": {"kernel_version": version}}
    if " SRC=" in message:
        match = _NETFILTER.search(message)
        if match:
            return _firewall(message, match.start())
    if "state" in message:
        match = _BRIDGE.search(message)
        if match:
            bridge, port_no, port, state = match.groups()
            return {"action": "bridge.down" if state == "disabled" else "bridge.port_state",
                    "target": Target(type="bridge", name=bridge),
                    "attrs": {"port": port, "port_no": int(port_no), "state": state}}
    if "ink" in message:
        match = _NIC_LINK.match(message) or _NIC_LINK_OLD.match(message)
        if match:
            return _link(match.group("state"), match.group("dev"), driver=match.group("driver"))
        match = _BOND.match(message)
        if match:
            bond, slave, state, old_state, old_slave = match.groups()
            return _link(state or old_state, slave or old_slave, bond=bond)
    return hardware_fields(message)  # machine checks, EDAC, disk/fs errors, NIC resets, throttling


def _network_manager(message: str) -> Fields | None:
    level = None
    prefix = _NM_PREFIX.match(message)
    text = message
    if prefix:
        level = prefix.group(1)
        text = message[prefix.end():]
    fields: Fields | None = None
    match = _NM_STATE.match(text)
    if match:
        device, old, new, reason = match.groups()
        old, new = _NM_NUMERIC.get(old, old), _NM_NUMERIC.get(new, new)
        attrs = {"old_state": old, "new_state": new, **({"reason": reason} if reason else {})}
        fields = {"target": Target(type="interface", name=device), "attrs": attrs}
        if old == "activated" and new in _NM_DOWN:
            fields["action"] = "link.down"
    if level is not None:
        fields = fields or {"attrs": {}}
        fields["severity"] = normalize_severity(level)
    return fields


class KernelNetParser:
    name = "kernel_net"
    programs = frozenset({"kernel", "NetworkManager", "networkmanager"})

    def parse_message(self, program: str, message: str) -> Fields | None:
        if program == "kernel":
            return _kernel(message)
        return _network_manager(message)


PARSER = KernelNetParser()
