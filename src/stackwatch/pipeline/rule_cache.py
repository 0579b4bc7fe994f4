"""The rule set, loaded and compiled once per process and shared by the engines built from it.

Reading and compiling the rule files (the built-in packs alone: about 0.4 s of CPU, pure
Python) is most of what building an engine costs. An analyzer builds one engine per partition
it opens, and a standby taking over a dead analyzer's partitions opens them all at once: with
8 partitions it paid that 8 times before its first batch. ``rule_set`` loads it once and hands
the same ``RuleSet`` to every engine of the process (``engine_for(..., shared_rules=True)``).

Sharing is safe because what is shared holds no engine's state: a ``Rule`` is frozen, its
``params`` and ``explained_by`` are frozen dataclasses, its conditions are pure functions of
the event (module-level caches keyed by the event, or constants); everything that keeps state
(each rule's detector, its explainer's memory, the dedup index, the correlation stage) is
built per engine in ``Engine.__init__`` (tests/detect/test_rule_cache.py). The ``RuleSet``
returned must not be modified: ``engine_for`` copies its list before applying the web UI's
switches.

Keyed by what determines the rules: ``rules.builtin``, ``rules.paths``, ``rules.strict`` and
each rule file's size and modification time, so an edited rule file is read again by the next
engine built (as when each engine loaded its own), and a reloaded configuration with other
paths loads the new set. A strict load that fails is not cached (it raises again).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from stackwatch.config.settings import RulesSettings
from stackwatch.detect.loader import RuleSet, rule_files

MAX_SETS: Final = 4
"""Rule sets kept (distinct keys): one configuration per process, a few for tests and reloads."""

Key = tuple[bool, tuple[str, ...], bool, tuple[tuple[str, int, int], ...]]

_lock = threading.Lock()  # partitions open in threads: the first loads, the others wait for it
_sets: OrderedDict[Key, RuleSet] = OrderedDict()
loads = 0
"""Rule sets loaded by this process (tests and the takeover benchmark read it)."""


def _key(rules: RulesSettings) -> Key:
    files = []
    for path in rule_files(rules.paths):
        try:
            stat = path.stat()
            files.append((str(path), stat.st_mtime_ns, stat.st_size))
        except OSError:  # the load reports it; a file appearing later changes the key
            files.append((str(path), -1, -1))
    return bool(rules.builtin), tuple(map(str, rules.paths)), bool(rules.strict), tuple(files)


def rule_set(rules: RulesSettings, load: Callable[[], RuleSet]) -> RuleSet:
    """The rule set of ``rules``, from ``load`` the first time (and after a rule file changed).
    Read-only: shared by every engine of the process."""
    global loads
    key = _key(rules)
    with _lock:
        found = _sets.get(key)
        if found is not None:
            _sets.move_to_end(key)
            return found
        loaded = load()
        loads += 1
        _sets[key] = loaded
        if len(_sets) > MAX_SETS:
            _sets.popitem(last=False)
        return loaded


def clear() -> None:
    """Forget every rule set (the next engine loads its rules again)."""
    with _lock:
        _sets.clear()
