"""What a long-running command warns about once, at start, when it runs less safely than it
could: the web server without TLS, the monitor on a store without signing keys."""

from __future__ import annotations

from stackwatch.config.settings import StoreSettings
from stackwatch.store.record_ledger import key_paths

_LOOPBACK = ("127.0.0.1", "::1", "localhost")


def plain_http_warning(host: str, port: int) -> str:
    """The warning for ``web`` serving plain HTTP on ``host:port``."""
    where = f"{host}:{port}"
    if host in _LOOPBACK:
        return (f"serving plain HTTP (no TLS) on {where}: safe only behind a TLS proxy on this machine; "
                "give --tls-cert and --tls-key otherwise")
    return (f"serving plain HTTP (no TLS) on {where}: passwords, session cookies and API tokens cross "
            "the network readable by anyone on the path; give --tls-cert and --tls-key")


def unkeyed_store_warning(store: StoreSettings) -> str | None:
    """The warning for ``serve`` on an embedded store with no signing key; None when keyed (or
    not embedded: a server's keys are its own)."""
    folder = store.embedded_folder()
    if folder is None or key_paths(folder)[0].exists():
        return None
    return (f"the store in {folder} has no signing key: its checkpoints are not signed, so whoever can "
            f"write that folder can rewrite history undetected; run `stackwatch store init --data {folder}` "
            "once")
