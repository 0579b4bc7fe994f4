"""Open vSwitch messages (ovs-vswitchd, ovs-vsctl, ovsdb-server).

OVS logs through its vlog module as ``SEQ|module|LEVEL|text``: in its own log file after an ISO
timestamp (``2016-06-29T11:00:00.123Z|00001|bridge|INFO|...``, handed over by the syslog record
parser) and via syslog with an ``ovs|`` prefix (vlog's default syslog pattern
``ovs|%05N|%c%T|%p|%m``). attrs: vlog_seq, module, thread (when logged); severity from LEVEL.

Wording (vswitchd/bridge.c, ofproto/bond.c, utilities/ovs-vsctl.c):

* ``bridge br-int: deleted interface tap1 on port 5`` -> ``port.deleted`` (target bridge br-int,
  attrs.port, attrs.port_no); ``... added interface ...`` -> ``port.added``. When the deleted
  interface is the bridge's own local port (same name, port 65534) the bridge itself is being
  removed -> ``bridge.deleted``.
* ``interface eth1: link state down`` (``member``/``slave`` in newer/other releases) ->
  ``link.down`` / ``link.up`` (target interface).
* ``Called as ovs-vsctl ... del-br br-ex`` -> ``bridge.deleted``; ``del-port [br] p`` ->
  ``port.deleted``; ``add-br`` / ``add-port`` -> ``bridge.added`` / ``port.added``;
  attrs.command = the arguments as written.
* ``bridge br-x: deleted`` / ``br-x destroyed`` style lines -> ``bridge.deleted`` (wording from
  the field contract; not found in the OVS sources we checked).
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from stackwatch.core.event import Target, normalize_severity

Fields = dict[str, Any]

_VLOG = re.compile(r"(?:ovs\|)?(\d{5})\|([\w-]+)(?:\(([^)]*)\))?\|(EMER|ERR|WARN|INFO|DBG)\|(.*)$", re.S)
_LEVELS = {"EMER": "emergency", "ERR": "error", "WARN": "warning", "INFO": "info", "DBG": "debug"}
_IFACE = re.compile(r"bridge (\S+): (deleted|added) interface (\S+) on port (\d+)")
_LINK_STATE = re.compile(r"(?:interface|member|slave) (\S+): link state (up|down)")
# The name stops before a colon: 'br-int: destroyed' names br-int (\S+ kept the colon).
_BRIDGE_GONE = re.compile(r"(?:bridge ([^\s:]+): deleted\.?$|(?:bridge )?([^\s:]+):? destroyed\.?$)")
_OFPP_LOCAL = 65534

# ovs-vsctl commands that change topology, most significant first.
_VSCTL_ACTIONS = (("del-br", "bridge.deleted"), ("del-port", "port.deleted"),
                  ("add-br", "bridge.added"), ("add-port", "port.added"))


def _vsctl(arguments: str) -> Fields:
    try:
        argv = shlex.split(arguments)
    except ValueError:  # unbalanced quotes: still better than nothing
        argv = arguments.split()
    if argv and argv[0].endswith("ovs-vsctl"):
        argv = argv[1:]
    commands: list[list[str]] = [[]]
    for arg in argv:
        if arg == "--":
            commands.append([])
        elif not (arg.startswith("--") and not commands[-1]):  # options precede the command word
            commands[-1].append(arg)
    found: dict[str, list[str]] = {}
    for command in commands:
        if command and command[0] not in found:
            found[command[0]] = command[1:]
    fields: Fields = {"attrs": {"command": arguments}}
    for word, action in _VSCTL_ACTIONS:
        if word not in found:
            continue
        args = found[word]
        fields["action"] = action
        if word.endswith("-br") and args:
            fields["target"] = Target(type="bridge", name=args[0])
        elif word == "del-port" and args:
            bridge = args[0] if len(args) > 1 else None
            fields["target"] = Target(type="bridge", name=bridge)
            fields["attrs"]["port"] = args[-1]
        elif word == "add-port" and len(args) >= 2:
            fields["target"] = Target(type="bridge", name=args[0])
            fields["attrs"]["port"] = args[1]
        break
    return fields


def _body(text: str) -> Fields | None:
    match = _IFACE.match(text)
    if match:
        bridge, verb, iface, port_no = match.groups()
        if verb == "deleted":
            action = "bridge.deleted" if iface == bridge and int(port_no) == _OFPP_LOCAL else "port.deleted"
        else:
            action = "port.added"
        return {"action": action, "target": Target(type="bridge", name=bridge),
                "attrs": {"port": iface, "port_no": int(port_no)}}
    match = _LINK_STATE.match(text)
    if match:
        iface, state = match.groups()
        return {"action": f"link.{state}", "target": Target(type="interface", name=iface), "attrs": {}}
    if text.startswith("Called as "):
        return _vsctl(text[10:])
    # literal gate: the regex needs one of these words (and backtracks over the first word
    # of every other message, flow_mods reports included, before it fails)
    match = _BRIDGE_GONE.match(text) if "deleted" in text or "destroyed" in text else None
    if match:
        bridge = match.group(1) or match.group(2)
        return {"action": "bridge.deleted", "target": Target(type="bridge", name=bridge), "attrs": {}}
    return None


class OvsParser:
    name = "ovs"
    programs = frozenset({"ovs-vswitchd", "ovs-vsctl", "ovsdb-server"})

    def parse_message(self, program: str, message: str) -> Fields | None:
        match = _VLOG.match(message)
        if match is None:
            return _body(message)
        seq, module, thread, level, text = match.groups()
        fields = _body(text) or {"attrs": {}}
        attrs = {"vlog_seq": int(seq), "module": module, **fields["attrs"]}
        if thread:
            attrs["thread"] = thread
        fields["attrs"] = attrs
        fields["severity"] = normalize_severity(_LEVELS[level])
        fields["message"] = text
        return fields


PARSER = OvsParser()
