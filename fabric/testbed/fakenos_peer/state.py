"""One device's configuration, shared by every SSH session to it: kept in memory behind a
lock, mirrored to ``<state_dir>/state.json`` after every change, refused per the device's
``<state_dir>/reject`` tokens."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from fabric.testbed.fakenos_peer.platforms import Platform


def _node(line: str) -> dict[str, Any]:
    return {"line": line, "children": []}


_TRUNK_EDIT = re.compile(r"^(switchport trunk allowed [Vv]lan) (add|remove) (\d+)$")


def _trunk_edit(nodes: list[dict[str, Any]], edit: re.Match) -> None:
    """`switchport trunk allowed vlan add|remove N` edits the port's one allowed-list line,
    as the switches show it (`switchport trunk allowed vlan 100,205`)."""
    keyword, op, vlan = edit.groups()
    line = next((n for n in nodes if n["line"].startswith(keyword + " ")), None)
    allowed = set(line["line"].split()[-1].split(",")) if line else set()
    allowed = (allowed | {vlan}) if op == "add" else (allowed - {vlan})
    if line is not None:
        nodes.remove(line)
    if allowed:
        listed = ",".join(sorted(allowed, key=int))
        nodes.append(_node(f"{keyword} {listed}"))


def _matches(line: str, removed: str) -> bool:
    return line == removed or line.startswith(removed + " ")


class SwitchState:
    """One device's configuration: an ordered tree for Cisco-like CLIs (top-level lines and
    sections with their sub-lines), ordered ``set`` statements for Junos."""

    def __init__(self, name: str, platform: Platform, state_dir: Path) -> None:
        self.name = name
        self.platform = platform
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.RLock()
        self.running: list[dict[str, Any]] = []  # cisco: tree; junos: committed set lines
        self.startup: list[Any] = []
        self.candidate: list[str] = []  # junos only
        self.commits = 0
        self.saves = 0
        self._load()

    # -- persistence ------------------------------------------------------------------------
    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def reject_file(self) -> Path:
        return self.state_dir / "reject"

    def _load(self) -> None:
        """A restarted switch boots from its startup configuration."""
        with contextlib.suppress(FileNotFoundError, ValueError):
            data = json.loads(self.state_file.read_text())
            self.startup = data.get("startup", [])
            self.running = copy.deepcopy(self.startup)
            self.candidate = list(self.running) if self.platform.family == "junos" else []
        self.persist()

    def persist(self) -> None:
        data = {
            "name": self.name,
            "device_type": self.platform.device_type,
            "running": self.running,
            "startup": self.startup,
            "candidate": self.candidate,
            "saved": self.saved,
            "saves": self.saves,
            "commits": self.commits,
            "running_lines": self.flat_lines(self.running),
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        os.replace(tmp, self.state_file)

    @property
    def saved(self) -> bool:
        return self.running == self.startup

    def reject_tokens(self) -> list[str]:
        try:
            text = self.reject_file.read_text()
        except FileNotFoundError:
            return []
        return [t.strip() for t in text.splitlines() if t.strip()]

    def rejected_by(self, line: str) -> str | None:
        return next((t for t in self.reject_tokens() if t in line), None)

    # -- rendering --------------------------------------------------------------------------
    def flat_lines(self, tree: list[Any]) -> list[str]:
        if self.platform.family == "junos":
            return [f"set {line}" for line in tree]
        out: list[str] = []

        def walk(nodes: list[dict[str, Any]], depth: int) -> None:
            for node in nodes:
                out.append(self.platform.indent * depth + node["line"])
                walk(node["children"], depth + 1)

        walk(tree, 0)
        return out

    def render_cisco(self, tree: list[dict[str, Any]], title: str) -> str:
        bang = "!"
        lines = [f"{bang} Command: {title}", f"{bang} device: {self.name} ({self.platform.vendor})"]
        lines.append(bang)
        lines.append(f"hostname {self.name}")
        lines.append(bang)
        for node in tree:
            lines.extend(self.flat_lines([node]))
            if node["children"]:
                lines.append(bang)
        lines.append("end")
        return "\n".join(lines)

    # -- Cisco-like editing -----------------------------------------------------------------
    def apply_cisco(self, path: list[str], line: str) -> list[str]:
        """Apply ``line`` inside the section ``path`` (list of section lines from the top);
        return the path of the section the CLI is in afterwards."""
        with self.lock:
            nodes = self.running
            for part in path:
                found = next((n for n in nodes if n["line"] == part), None)
                if found is None:  # removed by another session: recreate
                    found = _node(part)
                    nodes.append(found)
                nodes = found["children"]
            edit = _TRUNK_EDIT.match(line)
            if edit:
                _trunk_edit(nodes, edit)
                self.persist()
                return path
            if line.startswith("no "):
                removed = line[3:].strip()
                keep = [n for n in nodes if not _matches(n["line"], removed)]
                if len(keep) == len(nodes):
                    if not any(n["line"] == line for n in nodes):
                        nodes.append(_node(line))
                else:
                    nodes[:] = keep
                self.persist()
                return path
            nodes[:] = [n for n in nodes if n["line"] != f"no {line}"]
            if not any(n["line"] == line for n in nodes):
                nodes.append(_node(line))
            self.persist()
            return path

    def save_cisco(self) -> None:
        with self.lock:
            self.startup = copy.deepcopy(self.running)
            self.saves += 1
            self.persist()

    # -- Junos editing ----------------------------------------------------------------------
    def junos_set(self, statement: str) -> None:
        with self.lock:
            if statement not in self.candidate:
                self.candidate.append(statement)
            self.persist()

    def junos_delete(self, statement: str) -> bool:
        with self.lock:
            keep = [s for s in self.candidate if not _matches(s, statement)]
            found = len(keep) != len(self.candidate)
            self.candidate = keep
            self.persist()
            return found

    def junos_commit(self, check_only: bool = False) -> str | None:
        """Commit the candidate; return an error text, or None on success."""
        with self.lock:
            tokens = self.reject_tokens()
            bad = [s for s in self.candidate if any(t in s for t in tokens)]
            if bad:
                details = "\n".join(
                    f"  'set {s}'\n    statement refused by this switch" for s in bad
                )
                return f"[edit]\n{details}\nerror: configuration check-out failed"
            if not check_only:
                self.running = list(self.candidate)
                self.startup = list(self.candidate)
                self.commits += 1
                self.persist()
            return None

    def junos_rollback(self) -> None:
        with self.lock:
            self.candidate = list(self.running)
            self.persist()

    @property
    def junos_uncommitted(self) -> bool:
        return self.candidate != self.running
