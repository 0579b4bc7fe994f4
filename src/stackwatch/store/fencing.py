"""Fencing a cluster partition's writers by an ownership epoch.

RabbitMQ's single active consumer gives a partition to one analyzer at a time, but an analyzer
the broker has cut off (its connection closed on the broker's side, a standby already active)
may not know it yet and still hold a turn it is committing. So the partition's row in the
store (``partition_state``) carries an epoch: the analyzer that becomes active takes the next
one (``Store.claim_partition``) before it loads the checkpoint, and from then on every write
transaction of its store that carries the partition's events, alerts or checkpoint first reads
the row's epoch under a write lock and refuses to commit unless it is still its own. The old
analyzer's commit then rolls back whole (nothing of it is stored) and it gives the partition up.
"""

from __future__ import annotations

from stackwatch.core.errors import StoreError


class PartitionFenced(StoreError):
    """The partition was taken over (a newer epoch): this writer's commit was rolled back."""

    def __init__(self, partition: str, epoch: int, current: int | None) -> None:
        super().__init__(f"partition {partition}: ownership epoch {epoch} was superseded by "
                         f"{current if current is not None else 'none'}; the commit was rolled back")
        self.partition = partition
        self.epoch = epoch
        self.current = current
