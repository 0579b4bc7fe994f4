"""Hardware faults a node logs: the kernel's machine checks, EDAC memory errors, block and
filesystem errors, NIC resets and thermal throttling, smartd's SMART reports and IPMI SEL
entries (ipmiseld, or ipmitool/ipmievd lines sent to syslog).

Every fault becomes action ``hardware.error`` with ``attrs.component`` (``cpu``, ``memory``,
``disk``, ``filesystem``, ``smart``, ``ipmi``, ``nic``, ``thermal``), ``attrs.device`` when the
line names one (``/dev/sda``, ``sda``, ``MC0``, ``0000:3b:00.0``), and ``target`` the device.
Lines about the same hardware that are not faults (smartd opening a device, an attribute that
only drifted) keep their device but no action.

Shapes (each from the program's own source or documentation; see parsers/vectors/hardware.yaml):

* kernel ``mce: [Hardware Error]: ...`` and ``Machine check events logged``
  (arch/x86/kernel/cpu/mce/core.c);
* ``EDAC MC0: 1 CE memory read error on ...`` / ``... UE ...`` (drivers/edac/edac_mc.c), and
  the older ``EDAC MC0: CE page 0x..., ...``;
* ``blk_update_request: I/O error, dev sda, sector 123 op 0x0:(READ) ...`` (block/blk-core.c,
  also without the prefix on kernels >= 5.16 and as ``print_req_error:`` on 4.x),
  ``Buffer I/O error on dev sda1, logical block 0, ...`` (fs/buffer.c),
  ``ata1.00: failed command: READ FPDMA QUEUED`` (libata);
* ``EXT4-fs error (device sda1): ...`` (fs/ext4/super.c), ``XFS (sdb1): ... [Cc]orruption ...``,
  ``XFS (sdb1): Internal error ...``, ``XFS (sdb1): metadata I/O error ...`` (fs/xfs);
* NIC driver resets: ``i40e 0000:3b:00.0: TX driver issue detected, PF reset issued``,
  ``ixgbe 0000:01:00.0 eth0: Detected Tx Unit Hang``, ``bnxt_en ...: Firmware reset ...``,
  ``mlx5_core ...: ... health ...``, ``NETDEV WATCHDOG: eth0 (ixgbe): transmit queue 0 timed out``;
* ``CPU2: Core temperature above threshold, cpu clock throttled (total events = 1)``
  (arch/x86/kernel/cpu/mce/therm_throt.c; ``Package`` for the package sensor) and
  ``thermal thermal_zone0: critical temperature reached ...`` (drivers/thermal);
* smartd ``Device: /dev/sda [SAT], FAILED SMART self-check. BACK UP DATA NOW!``, ``... N
  Currently unreadable (pending) sectors``, ``... N Offline uncorrectable sectors``, ``... ATA
  error count increased from A to B``, ``... Self-Test Log error count increased ...``,
  ``... SMART Failure: ...`` (SCSI), ``... Failed SMART usage Attribute: ...``, ``... previous
  self-test completed with error ...``, ``... Temperature N Celsius reached critical limit ...``
  (smartmontools smartd.cpp: the lines it logs at LOG_CRIT);
* ipmiseld ``SEL System Event: <sensor>, <direction>, <event>`` (freeipmi's default
  ``IPMISELD_SYSTEM_EVENT_FORMAT_STR_DEFAULT``, ``SEL OEM Event: ...`` for OEM records) and
  ipmitool's ``sel list`` rows ``1 | 04/12/2026 | 10:22:01 | Memory #0x01 | Correctable ECC |
  Asserted`` when a cron job pipes them to syslog (program ``ipmitool``) or ipmievd logs them.
"""

from __future__ import annotations

import re
from typing import Any, Final

from stackwatch.core.event import Target

Fields = dict[str, Any]

ACTION: Final = "hardware.error"

_MCE = re.compile(r"(?:mce: \[Hardware Error\]:|Machine check events logged|Machine Check Exception)")
_EDAC = re.compile(r"EDAC (?P<mc>\w+): (?:(?P<n>\d+) )?(?P<kind>CE|UE)\b")
_BLOCK = re.compile(r"(?:(?:blk_update_request|print_req_error): )?(?:critical \w+ )?"
                    r"I/O error,? dev (?P<dev>[\w.-]+), sector (?P<sector>\d+)")
_BUFFER = re.compile(r"Buffer I/O error on dev(?:ice)? (?P<dev>[\w.-]+),")
_ATA = re.compile(r"(?P<dev>ata\d+(?:\.\d+)?): (?:failed command:|exception Emask|status: \{ DRDY ERR \})")
_EXT4 = re.compile(r"EXT4-fs error \(device (?P<dev>[^)]+)\)")
_XFS = re.compile(r"XFS \((?P<dev>[^)]+)\): .*?(?:[Cc]orruption|Internal error|metadata I/O error)")
_THROTTLE = re.compile(r"CPU(?P<cpu>\d+): (?P<level>Core|Package) temperature (?:is )?above threshold, "
                       r"cpu clock (?:is )?throttled")
_THERMAL_CRIT = re.compile(r"thermal (?P<dev>\S+): critical temperature reached")
_NIC = re.compile(r"(?P<driver>i40e|ice|ixgbe|igb|igc|e1000e|bnxt_en|mlx5_core|mlx4_core|tg3|qede|qed|"
                  r"be2net|nfp|ionic|hinic|enic|cxgb4) (?P<bus>[\w:.]+)(?: (?P<dev>[\w.@-]+))?: (?P<rest>.*)")
_NIC_FAULT = re.compile(r"(?i)\breset|tx unit hang|firmware (?:error|crash|fatal|fault)|fatal error|"
                        r"health (?:compromised|poll failed|recovery)|\bfw (?:fatal|crash|error)")
_WATCHDOG = re.compile(r"NETDEV WATCHDOG: (?P<dev>[\w.@-]+) \((?P<driver>[\w-]+)\): "
                       r"transmit queue \d+ timed out")

_SMARTD = re.compile(r"Device: (?P<dev>\S+?)(?: \[(?P<type>[\w ]+)\])?, (?P<rest>.*)")
_SMART_COUNT = re.compile(r"(?P<n>\d+) (?:Currently unreadable \(pending\)|Offline uncorrectable) sectors")
_SMART_FAULTS: Final = ("FAILED SMART self-check", "SMART Failure", "Failed SMART usage Attribute",
                        "error count increased", "new Self-Test Log error", "reached critical limit",
                        "Critical Warning", "number of Error Log entries increased")
"""smartd's words for a failing disk (all logged at LOG_CRIT). Not "error count decreased" (LOG_INFO),
nor its critical lines about its own access ("Read SMART ... Failed", a self-test the host aborted)."""
_SELF_TEST_FAULT = re.compile(r"previous self-test completed with error")
# (smartd 7.3 logs "could not complete due to a fatal or unknown error" below LOG_CRIT: no fault)
_SEL_PIPE = re.compile(r"\s*(?P<id>[0-9a-fA-F]+) \| (?P<date>[^|]*?) \| (?P<time>[^|]*?) \| "
                       r"(?P<sensor>[^|]+?) \| (?P<event>[^|]+?)(?: \| (?P<state>[^|]+?))?\s*$")
_SEL_DAEMON = re.compile(r"SEL (?P<kind>System|OEM) Event: (?P<rest>.*)")
_IPMI_BENIGN: Final = ("Deasserted", "Deassertion Event", "Log area reset", "Log area cleared",
                       "Initiated by power up", "Presence detected", "Device Present")


def _fault(component: str, severity: str, device: str | None = None, **attrs: Any) -> Fields:
    attrs = {"component": component, **({"device": device} if device else {}),
             **{k: v for k, v in attrs.items() if v is not None}}
    fields: Fields = {"action": ACTION, "outcome": "failure", "severity": severity, "attrs": attrs}
    if device:
        fields["target"] = Target(type="device", name=device)
    return fields


def kernel_fields(message: str) -> Fields | None:
    """The fault a kernel message reports, or None (most kernel lines)."""
    if "rror" in message or "rruption" in message:
        return _storage_or_memory(message)
    if "emperature" in message:
        match = _THROTTLE.search(message)
        if match:
            return _fault("thermal", "warning", f"cpu{match.group('cpu')}",
                          level=match.group("level").lower())
        match = _THERMAL_CRIT.search(message)
        if match:
            return _fault("thermal", "critical", match.group("dev"))
    if "achine" in message and _MCE.search(message):
        return _fault("cpu", "critical")
    if "EDAC" in message:
        return _edac(message)
    if "NETDEV WATCHDOG" in message:
        match = _WATCHDOG.search(message)
        if match:
            return _fault("nic", "error", match.group("dev"), driver=match.group("driver"))
    match = _NIC.match(message)
    if match and _NIC_FAULT.search(match.group("rest")):
        return _fault("nic", "error", match.group("dev") or match.group("bus"), driver=match.group("driver"),
                      bus=match.group("bus"))
    if "ata" in message:
        match = _ATA.match(message)
        if match:
            return _fault("disk", "error", match.group("dev"))
    return None


def _storage_or_memory(message: str) -> Fields | None:
    if "I/O error" in message:
        match = _BLOCK.search(message)
        if match:
            return _fault("disk", "error", match.group("dev"), sector=int(match.group("sector")))
        match = _BUFFER.search(message)
        if match:
            return _fault("disk", "error", match.group("dev"))
    if message.startswith("EXT4-fs error"):
        match = _EXT4.match(message)
        if match:
            return _fault("filesystem", "error", match.group("dev"), fs="ext4")
    if message.startswith("XFS"):
        match = _XFS.match(message)
        if match:
            return _fault("filesystem", "error", match.group("dev"), fs="xfs")
    if message.startswith("mce:") and _MCE.search(message):
        return _fault("cpu", "critical")
    if "EDAC" in message:
        return _edac(message)
    match = _ATA.match(message)
    if match:
        return _fault("disk", "error", match.group("dev"))
    return None


def _edac(message: str) -> Fields | None:
    match = _EDAC.search(message)
    if match is None:
        return None
    uncorrected = match.group("kind") == "UE"
    return _fault("memory", "critical" if uncorrected else "warning", match.group("mc"),
                  error_type=match.group("kind"), errors=int(match.group("n") or 1))


def smartd_fields(message: str) -> Fields | None:
    match = _SMARTD.match(message)
    if match is None:
        return None
    device, rest = match.group("dev"), match.group("rest")
    if any(marker in rest for marker in _SMART_FAULTS) or _SELF_TEST_FAULT.match(rest):
        severity = "critical" if ("FAILED" in rest or "Failure" in rest) else "error"
        return _fault("smart", severity, device, interface=match.group("type"), problem=rest.rstrip("!. "))
    count = _SMART_COUNT.search(rest)
    if count and int(count.group("n")) > 0:
        return _fault("smart", "error", device, interface=match.group("type"), problem=rest.rstrip(". "),
                      sectors=int(count.group("n")))
    attrs = {"component": "smart", "device": device, **({"interface": match.group("type")}
                                                         if match.group("type") else {})}
    return {"target": Target(type="device", name=device), "attrs": attrs}


def ipmi_fields(message: str) -> Fields | None:
    daemon = _SEL_DAEMON.match(message)
    if daemon:
        rest = daemon.group("rest")
        sensor = rest.split(",", 1)[0].strip() if daemon.group("kind") == "System" else None
        if any(word in rest for word in _IPMI_BENIGN):
            return {"attrs": {"component": "ipmi", "sel": rest}}
        return _fault("ipmi", "error", sensor, sel=rest)
    row = _SEL_PIPE.match(message)
    if row is None:
        return None
    state = (row.group("state") or "").strip()
    event = row.group("event").strip()
    sensor = row.group("sensor").strip()
    if state == "Deasserted" or any(word in event for word in _IPMI_BENIGN):
        return {"attrs": {"component": "ipmi", "sel": message.strip()}}
    return _fault("ipmi", "error", sensor, sel=message.strip(), sel_id=row.group("id"), event=event)


class HardwareParser:
    """Message parser for the hardware daemons (the kernel's lines come through kernel_net)."""

    name = "hardware"
    programs = frozenset({"smartd", "ipmiseld", "ipmievd", "ipmitool"})

    def parse_message(self, program: str, message: str) -> Fields | None:
        if program == "smartd":
            return smartd_fields(message)
        return ipmi_fields(message)


PARSER = HardwareParser()
