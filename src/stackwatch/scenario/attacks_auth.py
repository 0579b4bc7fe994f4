"""Authentication attacks: keystone brute force, spraying, targeted account, success after
failures, lockout; sshd brute force followed by a root login.

One keystone attempt shows up three times, as it does on a real controller: an Apache 401
on ``POST /v3/auth/tokens``, a keystone ``Authorization failed ... from <ip>`` line and a
CADF ``identity.authenticate`` failure on the bus, all with the same request id. haproxy
balances by source, so one client address always reaches the same controller.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Iterator

from stackwatch.scenario import formats
from stackwatch.scenario.bg_openstack import notification
from stackwatch.scenario.bg_os import UNSET, audit_user, ssh_session
from stackwatch.scenario.streams import Episode, Line
from stackwatch.scenario.world import CONTROLLERS, VIP, Scene, hex32, req_id, uuid4

ATTACK_AGENTS = (
    "python-requests/2.31.0",
    "curl/8.5.0",
    "Go-http-client/1.1",
    "openstacksdk/0.61.0 keystoneauth1/4.4.0 python-requests/2.25.1 CPython/3.10.12",
)
UNAUTHORIZED = "The request you have made requires authentication."
NOTIF = "ctl1/notifications.json"


def controller_for(ip: str) -> str:
    """haproxy ``balance source``: a stable backend per client address."""
    return CONTROLLERS[sum(map(int, ip.split("."))) % len(CONTROLLERS)]


def pw_hash(rng: random.Random) -> str:
    """A keystone ``partial_password_hash`` attachment (truncated HMAC, urlsafe base64)."""
    return base64.urlsafe_b64encode(rng.getrandbits(256).to_bytes(32, "big")).decode()[:43]


def keystone_attempt(
    sc: Scene,
    rng: random.Random,
    t: int,
    ip: str,
    username: str,
    user_id: str | None,
    agent: str,
    *,
    success: bool = False,
    password_hash: str | None = None,
    locked_after: int | None = None,
) -> Episode:
    """One ``POST /v3/auth/tokens``. ``user_id`` None: no such user. ``locked_after``: the account
    is locked (keystone refuses with AccountLocked; the CADF reason names the limit)."""
    host = controller_for(ip)
    req = req_id(rng)
    micros = rng.randrange(40_000, 400_000)
    access, ks = f"{host}/keystone_access.log", f"{host}/keystone.log"
    pid = sc.pid(host, "keystone")
    new = sc.new(host)
    tl = t + micros // 2000
    if success:
        ep: Episode = [
            (
                t,
                access,
                formats.apache(
                    t, ip, "POST", "/v3/auth/tokens", 201, rng.randrange(5200, 9800), agent, micros
                ),
            )
        ]
        if not new:
            ep.append(
                (
                    tl,
                    ks,
                    formats.oslo(
                        tl,
                        pid,
                        "INFO",
                        "keystone.common.wsgi",
                        sc.ctx(host, req),
                        f"POST http://{VIP}:5000/v3/auth/tokens",
                    ),
                )
            )
        return ep
    ep = [(t, access, formats.apache(t, ip, "POST", "/v3/auth/tokens", 401, 114, agent, micros))]
    logger = "keystone.server.flask.application" if new else "keystone.common.wsgi"
    if user_id is None:
        ep.append(
            (
                tl - 3,
                ks,
                formats.oslo(
                    tl - 3,
                    pid,
                    "WARNING" if new else "ERROR",
                    "keystone.auth.plugins.core",
                    sc.ctx(host, req),
                    f"Could not find user: {username}",
                ),
            )
        )
    if locked_after is not None and user_id is not None:
        detail = f"The account is locked for user: {user_id}."
        suffix = f": AccountLocked: {detail}" if new else ""
    else:
        detail, suffix = UNAUTHORIZED, f": Unauthorized: {UNAUTHORIZED}" if new else ""
    ep.append(
        (
            tl,
            ks,
            formats.oslo(
                tl,
                pid,
                "WARNING",
                logger,
                sc.ctx(host, req),
                f"Authorization failed. {detail} from {ip}{suffix}",
            ),
        )
    )
    tn = tl + rng.randrange(2, 30)
    initiator: dict[str, object] = {
        "id": user_id or hex32(rng),
        "typeURI": "service/security/account/user",
        "host": {"address": ip, "agent": agent},
        "request_id": req,
        "username": username,
    }
    if user_id is not None:
        initiator["user_id"] = user_id
    payload: dict[str, object] = {
        "typeURI": "http://schemas.dmtf.org/cloud/audit/1.0/event",
        "eventType": "activity",
        "id": uuid4(rng),
        "eventTime": formats.iso_utc(tn, rng.randrange(1000)),
        "action": "authenticate",
        "outcome": "failure",
        "observer": {"id": sc.world.observer_id, "typeURI": "service/security"},
        "initiator": initiator,
        "target": {"id": uuid4(rng), "typeURI": "service/security/account/user"},
    }
    if locked_after is not None:
        payload["reason"] = {
            "reasonCode": 401,
            "reasonType": f"Maximum number of {locked_after} login attempts exceeded.",
        }
    elif password_hash is not None:
        payload["attachments"] = [
            {"content": password_hash, "name": "partial_password_hash", "typeURI": "mime:text/plain"}
        ]
    ep.append((tn, NOTIF, notification(tn, rng, f"identity.{host}", "identity.authenticate", payload)))
    return ep


def brute_force(
    sc: Scene,
    rng: random.Random,
    t0: int,
    ip: str,
    username: str,
    user_id: str | None,
    attempts: int,
    spacing_ms: int,
) -> tuple[list[int], Iterator[Episode]]:
    """Many guesses for one account from one address (the hash changes every time)."""
    times = _times(rng, t0, attempts, spacing_ms)
    agent = rng.choice(ATTACK_AGENTS)
    seed = rng.getrandbits(64)

    def gen() -> Iterator[Episode]:
        r = random.Random(seed)
        for t in times:
            yield keystone_attempt(sc, r, t, ip, username, user_id, agent, password_hash=pw_hash(r))

    return times, gen()


def spraying(
    sc: Scene, rng: random.Random, t0: int, ip: str, accounts: list[tuple[str, str | None]], spacing_ms: int
) -> tuple[list[int], Iterator[Episode]]:
    """One password tried against many accounts: the same partial hash for every user."""
    times = _times(rng, t0, len(accounts), spacing_ms)
    agent = rng.choice(ATTACK_AGENTS)
    seed, h = rng.getrandbits(64), pw_hash(rng)

    def gen() -> Iterator[Episode]:
        r = random.Random(seed)
        for t, (name, uid) in zip(times, accounts, strict=True):
            yield keystone_attempt(sc, r, t, ip, name, uid, agent, password_hash=h if uid else None)

    return times, gen()


def _times(rng: random.Random, t0: int, n: int, spacing_ms: int) -> list[int]:
    out, t = [], t0
    for _ in range(n):
        out.append(t)
        t += max(50, int(rng.uniform(0.4, 1.6) * spacing_ms))
    return out


def ssh_failures(
    sc: Scene, rng: random.Random, host: str, t0: int, ip: str, attempts: int, spacing_ms: int
) -> tuple[list[int], Iterator[Episode]]:
    """An sshd password brute force: root and dictionary user names, with PAM and audit lines."""
    times = _times(rng, t0, attempts, spacing_ms)
    seed = rng.getrandbits(64)
    names = ("root", "admin", "ubuntu", "oracle", "test", "postgres", "git", "user", "deploy", "nova")

    def gen() -> Iterator[Episode]:
        r = random.Random(seed)
        auth = f"{host}/auth.log"
        for t in times:
            pid, port = r.randrange(2000, 4_000_000), r.randrange(32768, 61000)
            sshd = f"sshd[{pid}]"
            name = "root" if r.random() < 0.5 else r.choice(names)
            ep: Episode = []
            if name in ("root", "ubuntu"):
                ep.append(
                    (
                        t + 1900,
                        auth,
                        formats.syslog(
                            t + 1900,
                            host,
                            sshd,
                            "pam_unix(sshd:auth): authentication "
                            f"failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}  "
                            f"user={name}",
                        ),
                    )
                )
                ep.append(
                    (
                        t + 2100,
                        auth,
                        formats.syslog(
                            t + 2100, host, sshd, f"Failed password for {name} from {ip} port {port} ssh2"
                        ),
                    )
                )
                acct = name
            else:
                ep.append(
                    (t, auth, formats.syslog(t, host, sshd, f"Invalid user {name} from {ip} port {port}"))
                )
                ep.append(
                    (
                        t + 1900,
                        auth,
                        formats.syslog(t + 1900, host, sshd, "pam_unix(sshd:auth): check pass; user unknown"),
                    )
                )
                ep.append(
                    (
                        t + 1901,
                        auth,
                        formats.syslog(
                            t + 1901,
                            host,
                            sshd,
                            "pam_unix(sshd:auth): authentication "
                            f"failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={ip}",
                        ),
                    )
                )
                ep.append(
                    (
                        t + 2100,
                        auth,
                        formats.syslog(
                            t + 2100,
                            host,
                            sshd,
                            f"Failed password for invalid user {name} from {ip} port {port} ssh2",
                        ),
                    )
                )
                acct = "(invalid user)"
            ep.append(
                (
                    t + 2400,
                    auth,
                    formats.syslog(
                        t + 2400,
                        host,
                        sshd,
                        f"Connection closed by "
                        f"{'authenticating user ' + name if acct == name else 'invalid user ' + name}"
                        f" {ip} port {port} [preauth]",
                    ),
                )
            )
            ta = t + 2101
            ep.append(
                (
                    ta,
                    f"{host}/audit.log",
                    audit_user(
                        ta,
                        sc.audit_serial(ta, 5),
                        "USER_AUTH",
                        pid,
                        0,
                        UNSET,
                        UNSET,
                        f'op=PAM:authentication grantors=? acct="{acct}" exe="/usr/sbin/sshd" '
                        f"hostname={ip} addr={ip} "
                        "terminal=ssh res=failed",
                    ),
                )
            )
            yield ep

    return times, gen()


def ssh_root_login(sc: Scene, rng: random.Random, host: str, t: int, ip: str) -> Episode:
    """The attacker gets in as root with a password (then works as root: no sudo)."""
    return ssh_session(sc, host, rng, t, "root", ip, 0, [], salt=6, method="password")


def unusual_sudo(sc: Scene, rng: random.Random, host: str, t: int, user: str, uid: int, src: str) -> Episode:
    """A service account that never uses sudo opens a root shell."""
    ep = ssh_session(sc, host, rng, t, user, src, uid, [], salt=7)
    ts = t + 25_000
    auth = f"{host}/auth.log"
    home = f"/var/lib/{user}"
    lines: list[Line] = [
        (
            ts,
            auth,
            formats.syslog(
                ts, host, "sudo", f"{user:>8} : TTY=pts/0 ; PWD={home} ; USER=root ; COMMAND=/bin/bash"
            ),
        ),
        (
            ts + 3,
            auth,
            formats.syslog(
                ts + 3,
                host,
                "sudo",
                f"pam_unix(sudo:session): session opened for user root(uid=0) by {user}(uid={uid})",
            ),
        ),
        (
            ts + 1,
            f"{host}/audit.log",
            audit_user(
                ts + 1,
                sc.audit_serial(ts + 1, 7),
                "USER_CMD",
                rng.randrange(9000, 99999),
                uid,
                uid,
                sc.session(t, 7),
                f'cwd="{home}" cmd="/bin/bash" exe="/usr/bin/sudo" terminal=pts/0 res=success',
            ),
        ),
        (
            ts + 240_000,
            auth,
            formats.syslog(
                ts + 240_000, host, "sudo", "pam_unix(sudo:session): session closed for user root"
            ),
        ),
    ]
    return ep + lines
