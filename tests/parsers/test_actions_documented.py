"""Every action a parser emits on its vectors is documented in core.event.ACTIONS (rules are
written against that list), except notifications/CADF, which keep their own vocabulary."""

from stackwatch.core.event import ACTIONS
from stackwatch.parsers.framing import parse_text
from stackwatch.testing import load_parser_vectors

OWN_VOCABULARY = {"cadf", "notification"}


def test_every_emitted_action_is_documented():
    undocumented = set()
    for vector in load_parser_vectors():
        for event in parse_text(vector.input, host=vector.host, year=vector.year):
            action = event.action
            if not action or event.kind in OWN_VOCABULARY or action in ACTIONS:
                continue
            if action.startswith("ids.") and event.kind == "suricata":
                continue
            undocumented.add((event.kind, action, vector.name))
    assert not undocumented, sorted(undocumented)
