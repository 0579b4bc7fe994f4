"""Retention's margin for the login correlation: what a writer's login correlator
(``attempt_fold``) still holds does not expire.

The correlator holds a login's copies until its window has passed (event time) and writes the
attempt later, in the transaction that commits some later record; it names the seqs it holds
with every commit (``attempt_state`` on PostgreSQL, ``meta.attempts_pending`` in a folder).
A cutoff at the log's head (a tiny ``--max-size``) used to expire such records: their attempt
was written afterwards, pointing at expired records.

So the cutoff is held back, on both backends, below the oldest seq the correlator holds, and
to the last seq it folded (later ones are folded at the writer's next append, so they are not
expired unread).
Then it rounds down to a checkpoint (retention expires up to one).

Not done here: a login whose copies straddle the cut (a CADF copy below, its log line above)
is still split. Event time alone cannot say which close records are one login: a rule "no
login record within 30 s of event time of one above the cut" walks the cut back to the log's start
on a keystone with a login every few seconds (tests/store/test_postgres_ops caught it). An
exact cut would correlate the records around it (``attempt_fold``) and keep whole the groups
that straddle it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def hold_back(cutoff: int, *, old: int, held: Sequence[int], upto: int | None,
              checkpoint_at: Callable[[int], int]) -> int:
    """The checkpoint size retention may expire up to (``old``, the records already expired,
    when nothing may go): ``cutoff`` is the policy's last seq, ``held`` the seqs the
    correlator holds, ``upto`` the last seq it folded (None: the store keeps no such state),
    ``checkpoint_at(n)`` the newest checkpoint size at or below n."""
    if held:
        cutoff = min(cutoff, min(held) - 1)
    if upto is not None:
        cutoff = min(cutoff, upto)
    return max(old, checkpoint_at(cutoff))
