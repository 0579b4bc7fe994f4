"""Authentication messages: sshd, dropbear, sudo, su, login and PAM (for any program).

Actions emitted (see core.event.ACTIONS and the field contract):

* ``authenticate`` success|failure: sshd ``Accepted``/``Failed`` (attrs.method, attrs.port,
  attrs.invalid_user), ``error: PAM: Authentication failure for U from H``, ``User U from H not
  allowed because ...`` (attrs.reason), ``ROOT LOGIN REFUSED``, dropbear, login, PAM
  ``authentication failure; ... rhost= user=`` (attrs.pam_module, attrs.ruser...).
* ``authenticate.exceeded`` failure: a client used up its attempts (``maximum authentication
  attempts exceeded``, ``Too many authentication failures``, PAM ``N more authentication
  failures`` / ``ignoring max retries``, dropbear ``Max auth tries reached``); attrs.attempts
  when known. Kept apart from ``authenticate`` because it summarises failures already logged.
* ``user.not_found`` failure: ``Invalid user U from IP``, PAM ``check pass; user unknown``,
  dropbear ``Login attempt for nonexistent user``.
* ``account.locked``: ``User U not allowed because account is locked``.
* ``session.open`` / ``session.close`` (target.name = the user) from PAM session lines.
* ``privilege.escalate`` from sudo (attrs.command, attrs.tty, attrs.pwd, attrs.attempts) and su.
* sshd connection events, outcome failure when they happen before authentication:
  ``ssh.disconnect`` (attrs.preauth), ``ssh.protocol_error`` (scanners: no identification
  string, negotiation failures, timeouts), ``connection.refused`` (tcp wrappers);
  ``ssh.connect`` and ``ssh.reverse_dns_mismatch`` (``POSSIBLE BREAK-IN ATTEMPT``, attrs
  break_in_warning) have no outcome.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from stackwatch.core.event import Initiator, Target

Fields = dict[str, Any]

_FAILED_ACCEPTED = re.compile(
    r"(Failed|Accepted) (\S+) for (invalid user |illegal user )?(.*?) from (\S+)(?: port (\d+))?"
    r"(?: on \S+ port \d+)?(?: (ssh\d?))?(?:: (.*))?$")
_INVALID_USER = re.compile(r"(?:Invalid|Illegal) user (.*?) from (\S+)(?: port (\d+))?$")
_NOT_ALLOWED = re.compile(r"User (.*?)(?: from (\S+))? not allowed because (.*)$")
_ROOT_REFUSED = re.compile(r"ROOT LOGIN REFUSED FROM (\S+)(?: port (\d+))?")
_REFUSED_CONNECT = re.compile(r"refused connect from (\S+?)(?: \((\S+)\))?$")
_PAM_ERROR = re.compile(
    r"PAM: (?:[Aa]uthentication (?:failure|error)|(User not known) to the underlying authentication "
    r"module|(unknown user)) for (illegal user |invalid user )?(.*?) from (\S+)(?: via \S+)?\s*$")
_RECEIVED_DISCONNECT = re.compile(
    r"Received disconnect from (\S+?)(?: port (\d+))?: ?(\d+): (.*?)( \[preauth\])?$")
_CLOSED = re.compile(
    r"(?:Connection closed by|Connection reset by|Disconnected from) "
    r"(?:(?:(authenticating |invalid )?user (.*) (\S+) port (\d+))|([^\s\[]\S*?)(?: port (\d+))?)"
    r"( \[preauth\])?$")
_DISCONNECTING = re.compile(
    r"Disconnecting:? (?:(authenticating |invalid )?user (.*) (\S+) port (\d+)(?:: |$))?"
    r"(.*?)( \[preauth\])?$")
_TOO_MANY = re.compile(r"Too many authentication failures(?: for (?:invalid user )?(.*?))?$")
_MAX_EXCEEDED = re.compile(
    r"maximum authentication attempts exceeded for (invalid user )?(.*?) from (\S+) port (\d+)")
_CONNECTION_FROM = re.compile(r"Connection from (\S+?)(?: port (\d+))?(?: on (\S+) port (\d+))?(?: |$)")
_PROTOCOL_ERROR = re.compile(
    r"(?:Did not receive identification string from|Bad protocol version identification .* from"
    r"|(?:fatal: )?Unable to negotiate with|banner exchange: Connection from"
    r"|ssh_dispatch_run_fatal: Connection from (?:(?:authenticating |invalid )?user .* )?"
    r"|Timeout before authentication for (?:connection from )?) ?(\S+?)(?: port (\d+))?(?:: |, | to |$)")
_KERNEL_UPTIME = re.compile(r"^kernel: ?\[ *\d+\.\d+\]:? ")
_READ_ERROR = re.compile(r"Read error from remote host (\S+?)(?: port (\d+))?: (.*)$")
_REVERSE = re.compile(
    r"(?:reverse mapping checking getaddrinfo for (\S+) \[(\S+)\] failed"
    r"|Address (\S+) maps to (\S+), but this does not map back to the address)")

_DROPBEAR_PREFIX = re.compile(r"\[\d+\] [A-Z][a-z]{2} +\d+ \d\d:\d\d:\d\d ")
_DROPBEAR_BAD = re.compile(r"[Bb]ad (password|PAM password) attempt for '(.*)' from (\S+):(\d+)")
_DROPBEAR_NOUSER = re.compile(r"[Ll]ogin attempt for nonexistent user(?: '(.*)')? from (\S+):(\d+)")
_DROPBEAR_OK = re.compile(r"(Pubkey|Password|PAM password) auth succeeded for '(.*?)'.* from (\S+):(\d+)")
_DROPBEAR_ADDR = re.compile(r"from <?(\S+?):(\d+)>?(?:[: ]|$)")

_PAM_PREFIX = re.compile(r"(?:[\w.-]+\[\d+\]: )?(?:pam_(\w+)(?:\(([^)]*)\))?: |\(pam_(\w+)\) |PAM )")
_PAM_AUTH_FAILURE = re.compile(r"(?:(\d+) more )?authentication failures?;(.*?) ruser=(.*?) rhost=(\S*)"
                               r"(?:\s+user=(.*?))?\s*(?: \[preauth\])?$")
_PAM_SESSION = re.compile(r"session (opened|closed) for user (\S+?)(?:\(uid=(\d+)\))?(?: by (.*))?$")
_PAM_BY = re.compile(r"(\S*?)\(uid=(\d+)\)")
_PAM_MAX_RETRIES = re.compile(r"service\((\S+)\) ignoring max retries; (\d+) > (\d+)")
_PAM_EXPIRED = re.compile(r"expired password for user (\S+)|account (\S+) has expired")

_SUDO_ATTEMPTS = re.compile(r"(\d+) incorrect password attempts?")
_SU_TO = re.compile(r"\(to (\S+)\) (\S+) on (\S+)")
_SU_RESULT = re.compile(r"(Successful|FAILED) su for (\S+) by (\S+)")
_SU_SHADOW = re.compile(r"([+-]) (\S+) (\S+)$")  # '+ pts/4 dcid-root' (old), '- pts/0 alice:root'
_SU_UTIL_LINUX = re.compile(r"FAILED (?:SU|RUNUSER) \(to (\S+)\) (\S+) on (\S+)$")  # util-linux su
_SU_BSD = re.compile(r"(BAD SU )?(\S+) to (\S+) on (\S+)$")
_SU_FAILED_CHANGING = re.compile(r"failed: (\S+) changing from (\S+) to (\S+)")
_SU_AUTH_FAILED = re.compile(r"Authentication failed for (\S+)")
_LOGIN_FAILED = re.compile(r"FAILED LOGIN \(?(\d+)\)?(.*?) FOR '?([^',]*)'?, (.*)$")
_LOGIN_ROOT = re.compile(r"ROOT LOGIN +(?:ON|on) '?(\S+?)'?(?: FROM '?(\S+?)'?)?$")
_LOGIN_BY = re.compile(r"LOGIN ON '?(\S+?)'? BY '?(\S+?)'?(?: FROM '?(\S+?)'?)?$")
_LOGIN_FROM = re.compile(r"(?:FROM|from) '?([^\s']+)'?")

_TTY_PREFIXES = ("tty", "pts", "/dev/", ":", "console")
_SU_SERVICES = frozenset({"su", "su-l"})


def _ip(text: str) -> str:
    """Source address as rules should key it: IPv4-mapped IPv6 -> IPv4."""
    if text.startswith("::ffff:") and "." in text:
        return text[7:]
    return text


def _fields(action: str | None, outcome: str | None = None, *, name: str | None = None,
            ip: str | None = None, target: Target | None = None, **attrs: Any) -> Fields:
    fields: Fields = {}
    if action is not None:
        fields["action"] = action
    if outcome is not None:
        fields["outcome"] = outcome
    if name is not None or ip:
        fields["initiator"] = Initiator(name=name, source_ip=_ip(ip) if ip else None)
    if target is not None:
        fields["target"] = target
    fields["attrs"] = {k: v for k, v in attrs.items() if v is not None}
    return fields


def _int(text: str | None) -> int | None:
    return int(text) if text else None


# --- sshd -----------------------------------------------------------------------------------

def _sshd(message: str) -> Fields | None:
    text = message
    if text.startswith(("error: ", "fatal: ")):
        text = text[7:]
    elif text.startswith("kernel:"):  # 'kernel:[  970.699396]: Failed ...': a journal relay's artefact
        text = _KERNEL_UPTIME.sub("", text, count=1)
    head = text[:12]
    if head.startswith(("Failed ", "Accepted ")):
        match = _FAILED_ACCEPTED.match(text)
        if match:
            verb, method, invalid, user, ip, port, protocol, info = match.groups()
            invalid_user = bool(invalid) or user == "<invalid username>"
            return _fields("authenticate", "success" if verb == "Accepted" else "failure", name=user,
                           ip=ip, method=method, port=_int(port), invalid_user=invalid_user,
                           protocol=protocol, auth_info=info)
        return None
    if head.startswith(("Invalid user", "Illegal user")):
        match = _INVALID_USER.match(text)
        if match:
            user, ip, port = match.groups()
            return _fields("user.not_found", "failure", name=user, ip=ip, port=_int(port), invalid_user=True)
        return None
    if head.startswith("PAM: "):
        match = _PAM_ERROR.match(text)
        if match:
            unknown, unknown2, invalid, user, host = match.groups()
            if unknown or unknown2:
                return _fields("user.not_found", "failure", name=user, ip=host, invalid_user=True)
            return _fields("authenticate", "failure", name=user, ip=host, method="pam",
                           invalid_user=bool(invalid))
        return None
    if head.startswith("User "):
        match = _NOT_ALLOWED.match(text)
        if match:
            user, ip, reason = match.groups()
            if reason.startswith("account is locked"):
                return _fields("account.locked", "failure", name=user, ip=ip, reason=reason)
            return _fields("authenticate", "failure", name=user, ip=ip, reason=reason)
        return None
    if head.startswith("Received dis"):
        match = _RECEIVED_DISCONNECT.match(text)
        if match:
            ip, port, code, reason, preauth = match.groups()
            failed = bool(preauth) or code == "14" or "auth fail" in reason.lower()
            return _fields("ssh.disconnect", "failure" if failed else None, ip=ip, port=_int(port),
                           code=int(code), reason=reason, preauth=bool(preauth))
        return None
    if head.startswith(("Connection c", "Connection r", "Disconnected")):
        match = _CLOSED.match(text)
        if match:
            kind, user, user_ip, user_port, ip, port, preauth = match.groups()
            ip, port = (user_ip, user_port) if user is not None else (ip, port)
            return _fields("ssh.disconnect", "failure" if preauth else None, name=user, ip=ip,
                           port=_int(port), preauth=bool(preauth),
                           invalid_user=True if kind == "invalid " else None)
        return None
    if head.startswith("Disconnectin"):
        match = _DISCONNECTING.match(text)
        if match:
            kind, user, ip, port, reason, preauth = match.groups()
            many = _TOO_MANY.match(reason)
            if many:
                return _fields("authenticate.exceeded", "failure", name=user or many.group(1), ip=ip,
                               port=_int(port), reason=reason, preauth=bool(preauth))
            return _fields("ssh.disconnect", "failure", name=user, ip=ip, port=_int(port),
                           reason=reason or None, preauth=bool(preauth),
                           invalid_user=True if kind == "invalid " else None)
        return None
    if head.startswith("maximum auth"):
        match = _MAX_EXCEEDED.match(text)
        if match:
            invalid, user, ip, port = match.groups()
            return _fields("authenticate.exceeded", "failure", name=user, ip=ip, port=_int(port),
                           invalid_user=bool(invalid))
        return None
    if head.startswith("Connection f"):
        match = _CONNECTION_FROM.match(text)
        if match:
            ip, port, local_ip, local_port = match.groups()
            return _fields("ssh.connect", ip=ip, port=_int(port), local_ip=local_ip,
                           local_port=_int(local_port))
        return None
    if head.startswith("ROOT LOGIN R"):
        match = _ROOT_REFUSED.match(text)
        if match:
            return _fields("authenticate", "failure", name="root", ip=match.group(1),
                           port=_int(match.group(2)), reason="root login refused")
        return None
    if head.startswith("refused conn"):
        match = _REFUSED_CONNECT.match(text)
        if match:
            return _fields("connection.refused", "failure", ip=match.group(2) or match.group(1))
        return None
    if head.startswith(("reverse mapp", "Address ")):
        match = _REVERSE.match(text)
        if match:
            host, ip, ip2, host2 = match.groups()
            return _fields("ssh.reverse_dns_mismatch", ip=ip or ip2, hostname=host or host2,
                           break_in_warning="POSSIBLE BREAK-IN ATTEMPT" in text)
        return None
    if head.startswith("Postponed "):  # a method half-way (key accepted, signature to come)
        match = _FAILED_ACCEPTED.match("Failed " + text[10:].removesuffix(" [preauth]"))
        if match:
            _, method, invalid, user, ip, port, protocol, _ = match.groups()
            return _fields(None, name=user, ip=ip, method=method, port=_int(port), invalid_user=bool(invalid))
        return None
    if head.startswith("input_userau"):
        prefix = "input_userauth_request: invalid user "
        if text.startswith(prefix):  # the 'Invalid user U from IP' line already said it
            return _fields(None, name=text[len(prefix):].removesuffix(" [preauth]"), invalid_user=True)
        return None
    match = _PROTOCOL_ERROR.match(text)
    if match:
        return _fields("ssh.protocol_error", "failure", ip=match.group(1), port=_int(match.group(2)),
                       reason=text)
    if head.startswith("Read error f"):
        match = _READ_ERROR.match(text)
        if match:
            return _fields("ssh.disconnect", "failure", ip=match.group(1), port=_int(match.group(2)),
                           reason=match.group(3))
        return None
    if text.startswith(("kex_exchange_identification:", "Unable to negotiate", "Read from socket failed",
                        "Write failed", "no matching ", "Corrupted MAC on input", "Bad packet length")):
        # Scanner noise without an address; the address is on the connection's other lines.
        action = "ssh.disconnect" if "Connection reset" in text else "ssh.protocol_error"
        return _fields(action, "failure", reason=text, preauth=text.endswith("[preauth]"))
    return None


# --- dropbear ---------------------------------------------------------------------------------

def _dropbear(message: str) -> Fields | None:
    text = message
    prefix = _DROPBEAR_PREFIX.match(text)  # journal copies may repeat '[pid] Mmm dd HH:MM:SS '
    if prefix:
        text = text[prefix.end():]
    match = _DROPBEAR_BAD.match(text)
    if match:
        method, user, ip, port = match.groups()
        return _fields("authenticate", "failure", name=user, ip=ip, port=int(port),
                       method="password" if method == "password" else "pam")
    match = _DROPBEAR_NOUSER.match(text)
    if match:
        user, ip, port = match.groups()
        return _fields("user.not_found", "failure", name=user, ip=ip, port=int(port), invalid_user=True)
    match = _DROPBEAR_OK.match(text)
    if match:
        method, user, ip, port = match.groups()
        return _fields("authenticate", "success", name=user, ip=ip, port=int(port),
                       method=method.lower().replace("pam ", ""))
    if "Max auth tries reached" in text:
        addr = _DROPBEAR_ADDR.search(text)
        user = re.search(r"user '([^']*)'", text)
        fails = re.search(r"(\d+) fails", text)
        return _fields("authenticate.exceeded", "failure", name=user.group(1) if user else None,
                       ip=addr.group(1) if addr else None, port=_int(addr.group(2)) if addr else None,
                       attempts=_int(fails.group(1)) if fails else None)
    return None


# --- PAM ------------------------------------------------------------------------------------------

def _kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in text.split():
        key, sep, value = item.partition("=")
        if sep and value:
            out[key] = value
    return out


def _pam(message: str, program: str) -> Fields | None:
    module = pam_service = pam_type = None
    text = message
    prefix = _PAM_PREFIX.match(text)
    if prefix:
        module = prefix.group(1) or prefix.group(3)
        if prefix.group(2):
            pam_service, _, pam_type = prefix.group(2).rpartition(":")
            if not pam_service:  # 'pam_unix(auth)'
                pam_service, pam_type = None, pam_type
        text = text[prefix.end():]
    elif "(pam_" in program:
        module = program[program.index("(pam_") + 5:].rstrip(")")
    # 'PAM N more authentication failures' names no module: it is libpam's own summary
    pam_module = f"pam_{module}" if module else "libpam" if prefix else None
    pam: dict[str, Any] = {"pam_module": pam_module, "pam_service": pam_service,
           "pam_type": pam_type or None}
    if "authentication failure" in text:
        match = _PAM_AUTH_FAILURE.search(text)
        if match is None:
            return None
        more, head, ruser, rhost, user = match.groups()
        info = _kv(head)
        name = user or ruser or None
        attrs: dict[str, Any] = dict(pam, ruser=ruser or None, tty=info.get("tty"),
                                     logname=info.get("logname"), uid=_int(info.get("uid")),
                                     euid=_int(info.get("euid")))
        if more:
            return _fields("authenticate.exceeded", "failure", name=name, ip=rhost or None,
                           attempts=int(more), **attrs)
        if user and (pam_service in _SU_SERVICES or program.split("(", 1)[0] in _SU_SERVICES):
            # su asks for the password of the account it switches to (user=); the one asking
            # is ruser= (logname= on some PAM versions): a failed attempt to become that user
            return _fields("privilege.escalate", "failure", name=ruser or info.get("logname") or None,
                           target=Target(type="user", name=user), method="password", **attrs)
        return _fields("authenticate", "failure", name=name, ip=rhost or None, method="password", **attrs)
    if text.startswith("session "):
        match = _PAM_SESSION.match(text)
        if match is None:
            return None
        verb, user, uid, by = match.groups()
        by_name = by_uid = None
        if by:
            by_match = _PAM_BY.match(by)
            if by_match:
                by_name, by_uid = by_match.group(1) or None, int(by_match.group(2))
            else:
                by_name = by
        return _fields("session.open" if verb == "opened" else "session.close", "success", name=by_name,
                       target=Target(type="user", name=user), uid=_int(uid), by_uid=by_uid, **pam)
    if text.startswith("check pass; user unknown"):
        return _fields("user.not_found", "failure", **pam)
    match = _PAM_MAX_RETRIES.match(text)
    if match:
        return _fields("authenticate.exceeded", "failure", attempts=int(match.group(2)),
                       max_retries=int(match.group(3)), **dict(pam, pam_service=match.group(1)))
    match = _PAM_EXPIRED.search(text)
    if match:
        return _fields("password.expired", "failure", name=match.group(1) or match.group(2), **pam)
    if text.startswith("password check failed for user ("):  # unix_chkpwd
        return _fields("authenticate", "failure", name=text[32:].rstrip(")"), **pam)
    return None


# --- sudo / su / login ----------------------------------------------------------------------------

_SUDO_KEYS = frozenset({"TTY", "PWD", "USER", "GROUP", "TSID", "ENV", "CHROOT", "CWD", "HOST"})


def _sudo(message: str) -> Fields | None:
    head, sep, rest = message.partition(" : ")
    user = head.strip()
    if not sep or not user or " " in user:
        return None
    items = rest.split(" ; ")
    values: dict[str, str] = {}
    reasons: list[str] = []
    for index, item in enumerate(items):
        key, eq, value = item.partition("=")
        if eq and key == "COMMAND":
            values["COMMAND"] = " ; ".join([value, *items[index + 1:]])
            break
        if eq and key in _SUDO_KEYS:
            values[key] = value
        else:
            reasons.append(item.strip())
    if "COMMAND" not in values and "USER" not in values:
        return None
    reason = "; ".join(reasons) or None
    attempts = _SUDO_ATTEMPTS.search(reason) if reason else None
    return _fields("privilege.escalate", "failure" if reason else "success", name=user,
                   target=Target(type="user", name=values.get("USER", "root")),
                   command=values.get("COMMAND"), tty=values.get("TTY"), pwd=values.get("PWD"),
                   reason=reason, attempts=int(attempts.group(1)) if attempts else None)


def _su(message: str) -> Fields | None:
    match = _SU_TO.match(message)
    if match:
        target, user, tty = match.groups()
        return _escalate("success", user, target, tty)
    match = _SU_UTIL_LINUX.match(message)
    if match:
        target, user, tty = match.groups()
        return _escalate("failure", user, target, tty)
    match = _SU_RESULT.match(message)
    if match:
        result, target, user = match.groups()
        return _escalate("success" if result == "Successful" else "failure", user, target, None)
    match = _SU_SHADOW.match(message)
    if match:
        sign, tty, pair = match.groups()
        # 'from:to' splits at its colon (names may hold '-'); the old 'from-to' at its first '-'
        user, sep, target = pair.rpartition(":") if ":" in pair else pair.partition("-")
        if sep and user and target:
            return _escalate("success" if sign == "+" else "failure", user, target, tty)
    match = _SU_FAILED_CHANGING.match(message)
    if match:
        tty, user, target = match.groups()
        return _escalate("failure", user, target, tty)
    match = _SU_AUTH_FAILED.match(message)
    if match:
        return _escalate("failure", None, match.group(1), None)
    match = _SU_BSD.match(message)
    if match:
        bad, user, target, tty = match.groups()
        return _escalate("failure" if bad else "success", user, target, tty)
    return None


def _escalate(outcome: str, user: str | None, target: str, tty: str | None) -> Fields:
    return _fields("privilege.escalate", outcome, name=user, target=Target(type="user", name=target), tty=tty)


def _login(message: str) -> Fields | None:
    match = _LOGIN_FAILED.match(message)
    if match:
        count, where, user, reason = match.groups()
        source = _LOGIN_FROM.search(where)
        origin = source.group(1) if source else None
        tty = None
        if origin and origin.startswith(_TTY_PREFIXES):
            tty, origin = origin, None
        return _fields("authenticate", "failure", name=user, ip=origin, tty=tty, reason=reason,
                       attempts=int(count))
    match = _LOGIN_ROOT.match(message)
    if match:
        return _fields("authenticate", "success", name="root", ip=match.group(2), tty=match.group(1))
    match = _LOGIN_BY.match(message)
    if match:
        tty, user, origin = match.groups()
        return _fields("authenticate", "success", name=user, ip=origin, tty=tty)
    return None


_HANDLERS: dict[str, Callable[[str], Fields | None]] = {
    "sshd": _sshd, "sshd-session": _sshd, "sshd-auth": _sshd,
    "dropbear": _dropbear, "sudo": _sudo, "su": _su, "login": _login,
}


class AuthParser:
    """MessageParser for login-related programs; PAM lines are recognised for any program."""

    name = "auth"
    programs = frozenset({*_HANDLERS, "pam", "runuser", "unix_chkpwd"})
    memoizable = True  # parse_message reads its arguments only (see base.MessageParser)

    def parse_message(self, program: str, message: str) -> Fields | None:
        base = program.split("(", 1)[0]
        if "(pam" in program or message.startswith(("pam_", "(pam_", "PAM ")) or "]: pam_" in message[:64]:
            fields = _pam(message, program)
            if fields is not None or base not in _HANDLERS:
                return fields
        handler = _HANDLERS.get(base)
        return handler(message) if handler is not None else None


PARSER = AuthParser()
