"""Keys of a writer's log on PostgreSQL: ``stackwatch store init --data postgresql://...``.

Each writer signs and seals its own log with keys on its own host (the ``keys`` folder:
``keys/sign.key``, ``keys/seal.key`` as in an embedded store's data folder; the database
never holds a private key). Initialising records the writer's public key as its signer from
the sealer's epoch, logs a ``store.init`` admin event and makes the first checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stackwatch.core.errors import StoreError
from stackwatch.store.admin import admin_event
from stackwatch.store.keys import InitResult, _create_keys
from stackwatch.store.permissions import make_private
from stackwatch.store.postgres.store import PostgresStore, default_writer, split_url
from stackwatch.store.seal import format_initial_key


def init_writer(url: str, *, keys: str | Path, writer: str | None = None, actor: str = "stackwatch",
                **options: Any) -> InitResult:
    """Create ``writer``'s keys in ``keys`` and its first checkpoint; k0 is returned once."""
    folder = Path(keys)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    make_private(folder)
    writer = writer or split_url(url)[1].get("writer") or default_writer(folder)
    with PostgresStore(url, writer=writer, **{**options, "keys": None}) as probe:
        number = probe.start_writer().writer
        if probe.signers(number):
            raise StoreError(f"writer {probe.writer_name!r} already has a signing key: it is initialised")
    k0, pub = _create_keys(folder, 0)
    with PostgresStore(url, writer=writer, keys=folder, **options) as store:
        store.add_signer(pub)
        details = {"epoch": 0, "public_key": pub.hex()}
        store.record_admin(admin_event(actor, "store.init", store.log_id, details))
        store.checkpoint()
    return InitResult(format_initial_key(k0), pub.hex(), 0, False)
