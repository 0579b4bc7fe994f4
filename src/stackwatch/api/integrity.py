"""What the integrity page and API show, behind a small provider interface.

The tamper-evident store (checkpoints, verification, inclusion proofs) is optional: a store
that offers it exposes ``integrity_status()`` (and ``inclusion_proof(seq)``); any other store
is shown as "not configured". Providers return plain mappings so this module does not
depend on how the store implements its seal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from stackwatch.store.base import Store


@dataclass(frozen=True, slots=True)
class IntegrityReport:
    configured: bool
    state: str = "not configured"  # "ok", "failed", "unverified", "not configured"
    last_checkpoint: Mapping[str, Any] | None = None  # {seq, time, root, signed_by...}
    last_verification: Mapping[str, Any] | None = None  # {time, ok, detail, checked}
    witness: Mapping[str, Any] | None = None  # {name, state, last_seen...}
    checkpoints: tuple[Mapping[str, Any], ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "configured": self.configured,
            "state": self.state,
            "last_checkpoint": _plain(self.last_checkpoint),
            "last_verification": _plain(self.last_verification),
            "witness": _plain(self.witness),
            "checkpoints": [_plain(c) for c in self.checkpoints],
        }


class IntegrityStatus(Protocol):
    """What the web layer needs from the tamper-evident store."""

    def report(self) -> IntegrityReport: ...

    def proof(self, seq: int) -> Mapping[str, Any] | None:
        """An inclusion proof of event ``seq`` in the latest checkpoint; None when unknown."""
        ...


NOT_CONFIGURED = IntegrityReport(configured=False)


class StoreIntegrity:
    """Adapts a store's ``integrity_status()`` (a mapping with the report's keys, None when it
    keeps none) and ``inclusion_proof(seq)``."""

    def __init__(self, store: Store) -> None:
        self._status = store.integrity_status
        self._proof = store.inclusion_proof

    def report(self) -> IntegrityReport:
        data = self._status()
        if data is None:
            return NOT_CONFIGURED
        if isinstance(data, IntegrityReport):
            return data
        data = _plain(data) or {}
        verification = data.get("last_verification")
        state = data.get("state") or (
            "unverified" if not verification else ("ok" if verification.get("ok") else "failed")
        )
        return IntegrityReport(
            configured=bool(data.get("configured", True)),
            state=str(state),
            last_checkpoint=data.get("last_checkpoint"),
            last_verification=verification,
            witness=data.get("witness"),
            checkpoints=tuple(data.get("checkpoints") or ()),
        )

    def proof(self, seq: int) -> Mapping[str, Any] | None:
        result = self._proof(seq)
        return _plain(result) if result is not None else None


def integrity_for(store: Store) -> IntegrityStatus:
    """The store's integrity data (a store that keeps none reports ``NOT_CONFIGURED``)."""
    return StoreIntegrity(store)


def _plain(value: Any) -> Any:
    """Mappings, dataclasses and msgspec structs as plain dicts (for JSON and templates)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "__dataclass_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__dataclass_fields__}
    if hasattr(value, "__struct_fields__"):
        return {k: _plain(getattr(value, k)) for k in value.__struct_fields__}
    return str(value)
