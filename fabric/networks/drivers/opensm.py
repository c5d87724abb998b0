"""InfiniBand partitions through OpenSM's partitions.conf: one partition per tenant network
(its PKey), holding the port GUIDs of the network's nodes. The file is rewritten whole and
atomically; OpenSM rereads it on SIGHUP."""

from __future__ import annotations

import contextlib
import os
import signal
from pathlib import Path

from fabric.networks import safe

DEFAULT_PARTITION = "Default=0x7fff, ipoib : ALL=full ;"


def _guid(value: str) -> str:
    return "0x" + safe.guid(value).replace(":", "")


def render(partitions: dict[str, tuple[int, list[str]]]) -> str:
    """partitions: name -> (pkey, [port GUIDs]); names and values are validated here."""
    lines = ["# Written by the storefront; edits are overwritten.", DEFAULT_PARTITION]
    for name, (pkey, guids) in sorted(partitions.items()):
        members = ", ".join(f"{_guid(g)}=full" for g in sorted(guids))
        lines.append(f"{safe.name(name)}=0x{safe.number('pkey', pkey):04x}, ipoib : {members} ;")
    return "\n".join(lines) + "\n"


def write(path: Path, content: str, pid_file: Path | None = None) -> bool:
    """Replace the file if it changed; tell OpenSM (if running) to reread. True if changed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == content:
        return False
    tmp = path.with_suffix(".tmp")
    tmp.write_text(content)
    tmp.replace(path)
    if pid_file is not None and pid_file.exists():
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(pid_file.read_text().strip()), signal.SIGHUP)
    return True
