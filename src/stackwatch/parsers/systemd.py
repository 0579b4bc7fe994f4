"""systemd (PID 1 and user managers), systemd-logind and SysV/upstart init messages.

Wording covered (systemd's src/core/job.c and unit.c status strings, old and new):
``Started X.`` / ``Started foo.service - X.`` (v247+ prefixes the unit id), ``Starting X...``,
``Stopped X.``, ``Stopping X...``, ``Failed to start X.``, ``foo.service: Main process exited,
code=exited, status=1/FAILURE``, ``foo.service: Failed with result 'exit-code'.``,
``foo.service: Deactivated successfully.`` (v249+; ``Succeeded.`` before), ``foo.service:
Scheduled restart job, restart counter is at 5.``, ``Startup finished in ...``,
``Shutting down.``, ``Reached target Shutdown|Reboot|Power-Off...``, ``Time has been changed``.
logind: ``New session 3 of user alice.``, ``Removed session 3.``, ``System is rebooting.``,
``System is powering down.``, ``Power key pressed.``.

target.type is ``unit``; target.name the unit id when the line names one, else the
description; attrs.unit / attrs.description. The syslog parser drops system.boot /
system.shutdown coming from a systemd that is not PID 1 (per-user managers).
"""

from __future__ import annotations

import re
from typing import Any

from stackwatch.core.event import Target

Fields = dict[str, Any]

_UNIT_SUFFIX = r"\.(?:service|socket|timer|target|mount|automount|scope|slice|path|device|swap)"
_UNIT = re.compile(r"([\w@:.\\-]+" + _UNIT_SUFFIX + r") - (.*)$")
_JOB = re.compile(
    r"(Started|Starting|Stopped|Stopping|Failed to start|Failed to stop|Reloaded|Reloading) (.*)$")
_UNIT_MESSAGE = re.compile(r"([\w@:.\\-]+" + _UNIT_SUFFIX + r"): (.*)$")
_MAIN_EXITED = re.compile(r"(?:Main|Control) process exited, code=(\w+), status=(\d+)(?:/(\w+))?")
_FAILED_RESULT = re.compile(r"Failed with result '([\w-]+)'")
_RESTART = re.compile(r"Scheduled restart job, restart counter is at (\d+)")
_OLD_FAILED = re.compile(r"Unit ([\w@:.\\-]+" + _UNIT_SUFFIX + r") entered failed state")
_STARTUP = re.compile(r"Startup finished in (.*?)(?: = (\S+?))?\.?$")
_REACHED = re.compile(r"Reached target (.*?)\.?$")
_SHUTDOWN_TARGETS = frozenset({
    "shutdown.target", "reboot.target", "poweroff.target", "halt.target", "kexec.target",
    "Shutdown", "System Shutdown", "Reboot", "System Reboot", "Power-Off", "System Power Off",
    "Halt", "System Halt",
})
_NEW_SESSION = re.compile(r"New session (\S+) of user (\S+?)\.?$")
_REMOVED_SESSION = re.compile(r"Removed session (\S+?)\.?$")
_UPSTART = re.compile(r"(\S+) main process (?:\((\d+)\) )?"
                      r"(terminated with status (\d+)|killed by (\w+) signal|ended, respawning)")
_RUNLEVEL = re.compile(r"Switching to runlevel: (\d)")

_VERBS: dict[str, tuple[str, str]] = {
    "Started": ("service.start", "success"),
    "Starting": ("service.start", "pending"),
    "Stopped": ("service.stop", "success"),
    "Stopping": ("service.stop", "pending"),
    "Failed to start": ("service.fail", "failure"),
    "Failed to stop": ("service.fail", "failure"),
    "Reloaded": ("service.reload", "success"),
    "Reloading": ("service.reload", "pending"),
}


def _unit_fields(action: str | None, outcome: str | None, unit: str | None, description: str | None,
                 **attrs: Any) -> Fields:
    fields: Fields = {"attrs": {k: v for k, v in (("unit", unit), ("description", description),
                                                    *attrs.items()) if v is not None}}
    if action is not None:
        fields["action"] = action
        fields["target"] = Target(type="unit", name=unit or description)
    if outcome is not None:
        fields["outcome"] = outcome
    return fields


def _job(verb: str, what: str) -> Fields:
    what = what.removesuffix("...") if verb.endswith("ing") else what.removesuffix(".")
    unit = description = None
    match = _UNIT.match(what)
    if match:
        unit, description = match.groups()
    elif what.endswith((".service", ".socket", ".timer", ".mount", ".scope")) and " " not in what:
        unit = what
    else:
        description = what
    action, outcome = _VERBS[verb]
    return _unit_fields(action, outcome, unit, description)


def _unit_message(unit: str, text: str) -> Fields | None:
    match = _MAIN_EXITED.match(text)
    if match:
        code, status, name = match.groups()
        ok = code == "exited" and status == "0"
        return _unit_fields(None if ok else "service.fail", None if ok else "failure", unit, None,
                            code=code, exit_status=int(status), status_name=name)
    match = _FAILED_RESULT.match(text)
    if match:
        return _unit_fields("service.fail", "failure", unit, None, result=match.group(1))
    match = _RESTART.match(text)
    if match:
        return _unit_fields("service.fail", "failure", unit, None, restart_counter=int(match.group(1)))
    if text.startswith(("Deactivated successfully", "Succeeded")):
        return _unit_fields("service.stop", "success", unit, None)
    if text.startswith(("Unit entered failed state", "Start request repeated too quickly")):
        return _unit_fields("service.fail", "failure", unit, None, reason=text.rstrip("."))
    if text.startswith("Consumed "):
        return _unit_fields(None, None, unit, None, consumed=text[9:].rstrip("."))
    return None


def _systemd(message: str) -> Fields | None:
    match = _JOB.match(message)
    if match:
        verb, what = match.groups()
        if what.startswith("target "):  # 'Stopped target Multi-User System.' (pre-v247 wording)
            what = what[7:]
        return _job(verb, what)
    match = _UNIT_MESSAGE.match(message)
    if match:
        return _unit_message(*match.groups())
    if message.startswith("Startup finished in "):
        match = _STARTUP.match(message)
        return {"action": "system.boot", "outcome": "success",
                "attrs": {"startup": match.group(1) if match else message[20:],
                          **({"startup_total": match.group(2)} if match and match.group(2) else {})}}
    if message.startswith("Reached target "):
        match = _REACHED.match(message)
        what = match.group(1) if match else message[15:]
        unit_match = _UNIT.match(what)
        unit, description = unit_match.groups() if unit_match else (None, what)
        if unit in _SHUTDOWN_TARGETS or description in _SHUTDOWN_TARGETS:
            attrs = {"unit": unit, "description": description} if unit else {"description": description}
            return {"action": "system.shutdown", "target": Target(type="unit", name=unit or description),
                    "attrs": attrs}
        return None
    if message.startswith("Shutting down"):
        return {"action": "system.shutdown", "attrs": {}}
    if message.startswith("Time has been changed"):
        return {"action": "time.change", "attrs": {}}
    match = _OLD_FAILED.match(message)
    if match:
        return _unit_fields("service.fail", "failure", match.group(1), None)
    return None


def _logind(message: str) -> Fields | None:
    match = _NEW_SESSION.match(message)
    if match:
        session, user = match.groups()
        return {"action": "session.open", "outcome": "success", "target": Target(type="user", name=user),
                "attrs": {"session_id": session}}
    match = _REMOVED_SESSION.match(message)
    if match:
        return {"action": "session.close", "attrs": {"session_id": match.group(1)}}
    if message.startswith(("System is rebooting", "System is powering down", "System is halting",
                           "Power key pressed")):
        return {"action": "system.shutdown", "attrs": {"reason": message.rstrip(".")}}
    return None


def _init(message: str) -> Fields | None:
    match = _RUNLEVEL.match(message)
    if match:
        level = int(match.group(1))
        return {"action": "system.shutdown" if level in (0, 6) else None, "attrs": {"runlevel": level}}
    match = _UPSTART.match(message)
    if match:
        job, pid, _, status, signal = match.groups()
        attrs = {k: v for k, v in (("unit", job), ("main_pid", int(pid) if pid else None),
                                   ("exit_status", int(status) if status else None), ("signal", signal))
                 if v is not None}
        return {"action": "service.fail", "outcome": "failure", "target": Target(type="unit", name=job),
                "attrs": attrs}
    return _systemd(message)


class SystemdParser:
    name = "systemd"
    programs = frozenset({"systemd", "init", "systemd-logind"})
    memoizable = True  # parse_message reads its arguments only (see base.MessageParser)

    def parse_message(self, program: str, message: str) -> Fields | None:
        if program == "systemd-logind":
            return _logind(message)
        if program == "init":
            return _init(message)
        return _systemd(message)


PARSER = SystemdParser()
