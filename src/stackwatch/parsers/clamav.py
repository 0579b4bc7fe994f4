"""ClamAV: what clamd, clamscan, freshclam and clamav-milter write (via syslog or their logs).

``<path>: <Signature> FOUND`` is the finding (``malware.found``, critical); errors and
freshclam update failures are kept with their severity so a silent AV can be noticed.
"""

from __future__ import annotations

import re
from typing import Any

from stackwatch.core.event import Target

# '/tmp/eicar.com: Win.Test.EICAR_HDB-1 FOUND' (clamd may add '(md5:size)' to the name)
_FOUND_RE = re.compile(
    r"(?:\S+ -> )?(?P<path>.+?): (?P<sig>\S+?)(?:\((?P<hash>[0-9a-f]{32}):(?P<size>\d+)\))? FOUND$")
_MILTER_RE = re.compile(r"(?P<id>[0-9A-Za-z]+): .*?(?:virus|infected)[: ]+(?P<sig>\S+)", re.IGNORECASE)
_UPDATE_FAILED = ("Incremental update failed", "Update failed", "Can't download", "Can't connect to port",
                  "Error while reading database from", "Database load killed", "Can't query",
                  "Mirror not synchronized", "failed to download", "Failed to update")


class ClamavParser:
    name = "clamav"
    programs = frozenset({"clamd", "clamscan", "freshclam", "clamav-milter", "clamdscan", "clamonacc"})

    def parse_message(self, program: str, message: str) -> dict[str, Any] | None:
        text = message.strip()
        if text.endswith(" FOUND"):
            match = _FOUND_RE.match(text)
            if match:
                attrs: dict[str, Any] = {"signature": match.group("sig")}
                if match.group("hash"):
                    attrs["md5"], attrs["size"] = match.group("hash"), int(match.group("size"))
                return {"action": "malware.found", "severity": "critical", "outcome": "success",
                        "target": Target(type="file", name=match.group("path")), "attrs": attrs}
        if program == "clamav-milter" and ("infected" in text.lower() or "virus" in text.lower()):
            match = _MILTER_RE.search(text)
            if match:
                return {"action": "malware.found", "severity": "critical",
                        "target": Target(type="message", id=match.group("id")),
                        "attrs": {"signature": match.group("sig")}}
        if text.startswith("ERROR:") or text.startswith("LibClamAV Error:"):
            return {"severity": "error", "attrs": {"error": text.partition(":")[2].strip()}}
        if text.startswith("WARNING:") or text.startswith("LibClamAV Warning:"):
            return {"severity": "warning"}
        if program == "freshclam" and any(marker in text for marker in _UPDATE_FAILED):
            return {"action": "av.update", "outcome": "failure", "severity": "warning"}
        if "Database correctly reloaded" in text:
            return {"action": "av.reload", "outcome": "success"}
        if "Database updated" in text or text.startswith("daily.cvd updated") or text.startswith(
                "daily.cld updated"):
            return {"action": "av.update", "outcome": "success"}
        return None


PARSER = ClamavParser()
