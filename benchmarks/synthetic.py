"""Synthetic inputs for the benchmarks that the scenario corpus does not cover.

* ``keystone_failures(ips, events)``: a stream of failed keystone logins from ``ips``
  distinct source addresses, all inside one detection window, built as Events directly so
  the measurement is the detection state alone (the ``keys`` benchmark).
* ``write_cadf(path, events, seed)``: a file of oslo.messaging v2 envelopes carrying CADF
  ``identity.authenticate`` payloads, the shape keystone publishes (the ``cadf`` benchmark).

Both are seeded and reproducible.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from stackwatch.core.event import Event, Initiator

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
WINDOW_SECONDS = 300.0
"""The whole keys stream fits in 5 minutes, inside the keystone rules' 10-minute windows,
so every distinct address is held in state at once (the worst case for memory)."""


def address(index: int) -> str:
    """The ``index``-th distinct IPv4 address (10.0.0.0/8 holds 16M of them)."""
    return f"10.{(index >> 16) & 255}.{(index >> 8) & 255}.{index & 255}"


def keystone_failures(ips: int, events: int) -> Iterator[Event]:
    """``events`` failed logins spread over ``ips`` addresses (each address used
    ``events // ips`` times or once more), time-ordered within one window."""
    step = timedelta(seconds=WINDOW_SECONDS / max(events, 1))
    stride = 7919 if ips % 7919 else 7907  # a prime co-prime with ips: addresses interleave
    when = START
    for n in range(events):
        ip = address((n * stride) % ips)
        user = f"user{n % 5000}"
        yield Event(time=when, received=when, host="ctl1", service="keystone", severity="warning",
                    message=f"Authorization failed. The request you have made requires authentication. "
                            f"from {ip}",
                    kind="oslo_log", action="authenticate", outcome="failure",
                    initiator=Initiator(name=user, source_ip=ip), attrs={"logger": "keystone.server.flask"},
                    origin="bench:keys", ref=f"keys:{n}")
        when += step


_AGENTS = ("openstacksdk/0.61.0 keystoneauth1/4.4.0 python-requests/2.25.1 CPython/3.10.12",
           "python-keystoneclient", "keystoneauth1/5.6.0 python-requests/2.31.0 CPython/3.12.3")


def write_cadf(path: Path, events: int, seed: int = 7) -> Path:
    """Write ``events`` envelopes (one per line) of CADF identity.authenticate notifications:
    90 % successes, 10 % failures, from 2,000 addresses and 5,000 users."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    users = [(f"{rng.getrandbits(128):032x}", f"user{i}") for i in range(5000)]
    observer = f"{rng.getrandbits(128):032x}"
    tmp = path.with_suffix(".tmp")
    with tmp.open("wb") as out:
        when = START
        for n in range(events):
            when += timedelta(microseconds=rng.randint(100, 20000))
            user_id, user_name = users[rng.randrange(len(users))]
            failed = rng.random() < 0.1
            payload = {
                "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event", "eventType": "activity",
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "eventTime": when.strftime("%Y-%m-%dT%H:%M:%S.%f+0000"),
                "action": "authenticate", "outcome": "failure" if failed else "success",
                "observer": {"id": observer, "typeURI": "service/security"},
                "initiator": {"id": user_id, "typeURI": "service/security/account/user",
                              "host": {"address": address(rng.randrange(2000)),
                                       "agent": _AGENTS[n % len(_AGENTS)]},
                              "request_id": f"req-{uuid.UUID(int=rng.getrandbits(128), version=4)}",
                              "username": user_name, "user_id": user_id},
                "target": {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                           "typeURI": "service/security/account/user"},
            }
            message = {"message_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                       "publisher_id": f"identity.ctl{1 + n % 3}", "event_type": "identity.authenticate",
                       "priority": "INFO", "payload": payload,
                       "timestamp": when.strftime("%Y-%m-%d %H:%M:%S.%f"),
                       "_unique_id": f"{rng.getrandbits(128):032x}"}
            envelope = {"oslo.version": "2.0", "oslo.message": orjson.dumps(message).decode()}
            out.write(orjson.dumps(envelope) + b"\n")
    tmp.replace(path)
    return path
