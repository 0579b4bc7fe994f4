"""Retention's margin for the login correlation: what a writer's login correlator
(``attempt_fold``) may still hold, or may still group with a kept record, does not expire.

The correlator holds a login's copies until its window has passed (event time) and writes the
attempt later, in the transaction that commits some later record; it names the seqs it holds
with every commit (``attempt_state`` on PostgreSQL, ``meta.attempts_pending`` in a folder).
A cutoff at the log's head (a tiny ``--max-size``) used to expire such records: their attempt
was written afterwards, pointing at expired records, and a login whose copies straddled the
cutoff was recounted from its surviving copies alone (``store attempts`` reported it).

So the cutoff is held back, on both backends, below:

* the oldest seq the correlator holds, and the last seq it folded (later ones are folded at
  the writer's next append, so they are not expired unread);
* the first login record that has a login record above the cut within ``MARGIN`` of its event
  time: the two may be copies of one login (a group spans at most twice the correlation
  window; a ``user.not_found`` names its request's login within the name cache's ttl), and a
  login is kept or expired whole.

Each hold-back rounds down to a checkpoint again (retention expires up to one), and the test
repeats until the cut is clean. The backends give the queries (``Logins``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from stackwatch.detect.correlate import Correlator

_DEFAULTS: Final = Correlator()  # the parameters the writers' correlators run with (attempt_fold)
MARGIN: Final = int(max(2 * _DEFAULTS.window, _DEFAULTS.cache_ttl) * 1_000_000)
"""Microseconds of event time within which two login records may belong to one attempt."""

Straddling = Callable[[int, int, int], int | None]
"""(old, target, margin) -> the smallest seq in (old, target] of a login record with a login
record above ``target`` within ``margin`` of its event time; None when there is none."""


def hold_back(cutoff: int, *, old: int, held: Sequence[int], upto: int | None,
              checkpoint_at: Callable[[int], int], straddling: Straddling) -> int:
    """The checkpoint size retention may expire up to (``old``, the records already expired,
    when nothing may go): ``cutoff`` is the policy's last seq, ``held`` the seqs the
    correlator holds, ``upto`` the last seq it folded (None: the store keeps no such state),
    ``checkpoint_at(n)`` the newest checkpoint size at or below n."""
    if held:
        cutoff = min(cutoff, min(held) - 1)
    if upto is not None:
        cutoff = min(cutoff, upto)
    while True:
        target = checkpoint_at(cutoff)
        if target <= old:
            return old
        first = straddling(old, target, MARGIN)
        if first is None:
            return target
        cutoff = first - 1
