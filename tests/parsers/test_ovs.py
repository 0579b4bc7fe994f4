"""ovs: the literal gate before the bridge-gone regex."""

from __future__ import annotations

import pytest

from stackwatch.parsers import ovs


@pytest.mark.parametrize("text", [
    "bridge br0: deleted",
    "bridge br-ex: deleted.",
    "br-int: destroyed",
    "bridge br-tun destroyed.",
    "br-int<->tcp:127.0.0.1:6633: 12 flow_mods in the 7 s starting 10 s ago (12 adds)",
    "bridge br0: deleted interface x",
])
def test_bridge_gone_is_read_past_the_gate(text):
    """_body only tries _BRIDGE_GONE on text saying 'deleted' or 'destroyed' (the words its
    alternatives require); what it finds is still the regex's own reading."""
    match = ovs._BRIDGE_GONE.match(text)
    if match is None:
        assert ovs._body(text) is None
    else:
        assert ovs._body(text) == {"action": "bridge.deleted", "attrs": {},
                                   "target": ovs.Target(type="bridge", name=match.group(1) or match.group(2))}
