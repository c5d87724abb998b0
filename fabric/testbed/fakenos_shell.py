"""FakeNOS plugins that turn FakeNOS devices into switches that accept and record configuration.

FakeNOS (``fakenos`` on PyPI) runs every device of an inventory in one process: a paramiko SSH
server per device (a *server* plugin) hands each session to a *shell* plugin, which answers the
commands of a *NOS* (``fakenos.core.nos.Nos``; its ``device`` attribute may hold any object). Its
built-in platforms only answer canned ``show`` commands, so this module supplies:

* :class:`SwitchState` — one device's configuration (running, startup, Junos candidate), kept
  in memory behind a lock and mirrored to ``<state_dir>/state.json`` after every change;
* :class:`CiscoLikeShell` (EOS, NX-OS, Enterprise SONiC, IOS) and :class:`JunosShell` — shells
  with the prompts, config modes, save/commit commands and error texts netmiko's drivers expect;
* :class:`RecordingSshServer` — FakeNOS's paramiko server with the session loop replaced: the
  stock one echoes one byte per 10 ms through two helper threads, which makes a config session
  take seconds; here one thread per session reads, echoes and answers whole lines.

Lines containing a *poison* token (``INVALID-TEST``) or malformed lines are answered with the
vendor's error text and not recorded. *Reject* tokens (per device, in ``<state_dir>/reject``,
re-read on every line) make a device refuse a command the way that vendor does: EOS/NX-OS/SONiC
at once, Junos at ``commit`` (``error: configuration check-out failed``).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import re
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paramiko
from fakenos.plugins.servers.ssh_server_paramiko import (
    ParamikoSshServer,
    ParamikoSshServerInterface,
)

log = logging.getLogger(__name__)

POISON_TOKEN = "INVALID-TEST"  # noqa: S105 - a test marker, not a secret
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_KEYWORD = re.compile(r"^[a-z][a-z0-9-]*$")


# --------------------------------------------------------------------------------------------
# Platforms
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    """What one vendor CLI looks like to netmiko."""

    device_type: str
    family: str  # "cisco" or "junos"
    vendor: str
    indent: str = "  "
    exec_replies: dict[str, str] = field(default_factory=dict)
    save_commands: dict[str, str] = field(default_factory=dict)
    show_running: tuple[str, ...] = ("show running-config",)
    invalid_text: str = "% Invalid input detected at '^' marker."
    reject_text: str = "% Error: command refused by this switch (reject token '{token}')"
    linux_login: bool = False  # Enterprise SONiC: log in to bash, `sonic-cli` enters the CLI
    config_prefix: str = "config"


_COPY_NXOS = (
    "[########################################] 100%\n"
    "Copy complete, now saving to disk (please wait)...\nCopy complete."
)

PLATFORMS: dict[str, Platform] = {
    "arista_eos": Platform(
        device_type="arista_eos",
        family="cisco",
        vendor="Arista vEOS (FakeNOS test peer)",
        indent="   ",
        exec_replies={
            "terminal width 511": "Width set to 511 columns.",
            "terminal length 0": "Pagination disabled.",
        },
        save_commands={
            "write memory": "Copy completed successfully.",
            "write": "Copy completed successfully.",
            "copy running-config startup-config": "Copy completed successfully.",
        },
    ),
    "cisco_nxos": Platform(
        device_type="cisco_nxos",
        family="cisco",
        vendor="Cisco Nexus 9000v (FakeNOS test peer)",
        indent="  ",
        save_commands={
            "copy running-config startup-config": _COPY_NXOS,
            "write memory": _COPY_NXOS,
        },
    ),
    "cisco_ios": Platform(
        device_type="cisco_ios",
        family="cisco",
        vendor="Cisco IOS (FakeNOS test peer)",
        indent=" ",
        save_commands={
            "write memory": "Building configuration...\n[OK]",
            "write": "Building configuration...\n[OK]",
            "copy running-config startup-config": "Building configuration...\n[OK]",
        },
    ),
    "dell_sonic": Platform(
        device_type="dell_sonic",
        family="cisco",
        vendor="Dell Enterprise SONiC (FakeNOS test peer)",
        indent=" ",
        save_commands={"write memory": "", "copy running-configuration startup-configuration": ""},
        show_running=("show running-configuration", "show running-config"),
        invalid_text='% Error: Invalid input detected at "^" marker.',
        reject_text="% Error: command refused by this switch (reject token '{token}')",
        linux_login=True,
        config_prefix="conf",
    ),
    "juniper_junos": Platform(
        device_type="juniper_junos",
        family="junos",
        vendor="Juniper vQFX (FakeNOS test peer)",
    ),
}


# --------------------------------------------------------------------------------------------
# Configuration state
# --------------------------------------------------------------------------------------------


def _node(line: str) -> dict[str, Any]:
    return {"line": line, "children": []}


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


# --------------------------------------------------------------------------------------------
# Shells
# --------------------------------------------------------------------------------------------


class _Closed(Exception):
    """The session ends."""


class BaseShell:
    """A line-oriented shell with FakeNOS's shell-plugin signature. ``stdin.readline()`` returns
    one line (without its end) or None when the session is gone; ``stdout.write`` sends text."""

    def __init__(
        self,
        stdin: Any,
        stdout: Any,
        nos: Any,
        nos_inventory_config: dict,
        base_prompt: str,
        is_running: threading.Event,
        **_: Any,
    ) -> None:
        self.stdin = stdin
        self.stdout = stdout
        self.state: SwitchState = nos.device
        self.platform = self.state.platform
        self.hostname = base_prompt
        self.is_running = is_running

    def write(self, text: str) -> None:
        if text:
            self.stdout.write(text.replace("\r\n", "\n").replace("\n", "\r\n"))

    def writeline(self, text: str) -> None:
        if text:
            self.write(text + "\n")

    def start(self) -> None:
        self.write(self.intro())
        self.write(self.prompt())
        while self.is_running.is_set():
            line = self.stdin.readline()
            if line is None:
                return
            try:
                self.handle(line)
            except _Closed:
                return
            except Exception:  # a test peer must not die on a bad line
                log.exception("%s: error handling %r", self.hostname, line)
                self.writeline("% Internal error")
            self.write(self.prompt())

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.stdin.close()

    def intro(self) -> str:
        return ""

    def prompt(self) -> str:
        raise NotImplementedError

    def handle(self, line: str) -> None:
        raise NotImplementedError

    @staticmethod
    def caret(prompt: str, line: str, token: str | None) -> str:
        offset = len(prompt) + (line.find(token) if token and token in line else 0)
        return " " * max(offset, 0) + "^"

    @staticmethod
    def malformed(line: str) -> str | None:
        """Return the offending token of a malformed line, or None."""
        if POISON_TOKEN in line:
            return POISON_TOKEN
        if not _PRINTABLE.match(line):
            return line
        if line.count('"') % 2:
            return '"'
        first = line.split()[0]
        if not _KEYWORD.match(first):
            return first
        return None


# Sections that open a sub-mode at the top level of a Cisco-like configuration.
_TOP_SECTIONS = re.compile(
    r"^(interface \S+( \S+)?|vlan \d[\d,-]*|vrf (instance|context|definition) \S+"
    r"|ip vrf (?!forwarding)\S+"
    r"|router \S+.*|route-map \S+.*|(ip|ipv6|mac) access-list \S+.*|policy-map \S+.*"
    r"|class-map \S+.*|line \S+.*|evpn|management \S+|spanning-tree mst configuration"
    r"|peer-filter \S+|ip prefix-list \S+ *$)$"
)
# Nested sub-modes: parent section first word -> regex of child lines that open one.
_NESTED = {
    "router": re.compile(
        r"^(address-family \S+.*|vrf \S+|neighbor \S+( remote-as \S+)?|template .+)$"
    ),
    "vrf": re.compile(r"^address-family \S+.*$"),
    "evpn": re.compile(r"^vni \S+ l2$"),
    "interface": re.compile(r"^member vni \S+.*$"),
}


def _mode_name(platform: Platform, section: str) -> str:
    words = section.split()
    first = words[0]
    if platform.device_type == "arista_eos":
        if first == "interface":
            short = re.sub(r"^(Et|Po|Vl|Lo|Ma|Vx)[a-z-]*", r"\1", words[1])
            return f"config-if-{short}"
        if first == "vlan":
            return f"config-vlan-{words[1]}"
        if first == "vrf":
            return f"config-vrf-{words[-1]}"
        if first == "router":
            return f"config-router-{words[1]}"
        return f"config-{first}"
    if platform.device_type == "dell_sonic":
        if first == "interface":
            return f"conf-if-{''.join(words[1:])}"
        return "conf-vrf" if "vrf" in words[:2] else f"conf-{first}"
    if first == "interface":
        return "config-if"
    if first == "vrf":
        return "config-vrf"
    return f"config-{first}"


class CiscoLikeShell(BaseShell):
    """EOS, NX-OS, Enterprise SONiC (KLISH) and IOS: ``#`` exec, ``configure terminal``,
    ``(config…)#`` sub-modes, ``end``/``exit``, save with ``write memory`` or
    ``copy running-config startup-config``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.in_linux = self.platform.linux_login
        self.config = False
        self.path: list[str] = []  # section lines from the top, while in config mode

    def intro(self) -> str:
        return f"Welcome to {self.hostname}\n" if self.in_linux else ""

    def prompt(self) -> str:
        if self.in_linux:
            return f"admin@{self.hostname}:~$ "
        if not self.config:
            return f"{self.hostname}#"
        if not self.path:
            return f"{self.hostname}({self.platform.config_prefix})#"
        return f"{self.hostname}({_mode_name(self.platform, self.path[-1])})#"

    def invalid(self, line: str, token: str | None) -> None:
        self.writeline(self.caret(self.prompt(), line, token))
        self.writeline(self.platform.invalid_text)

    def handle(self, raw: str) -> None:
        line = raw.strip()
        if not line:
            return
        if self.in_linux:
            self.handle_linux(line)
        elif self.config:
            self.handle_config(line)
        else:
            self.handle_exec(line)

    def handle_linux(self, line: str) -> None:
        if line in ("sonic-cli", "sudo sonic-cli"):
            self.in_linux = False
        elif line in ("exit", "logout"):
            raise _Closed
        elif line.split()[0] in ("echo", "true", ":"):
            self.writeline(line[5:] if line.startswith("echo ") else "")
        else:
            self.writeline(f"-bash: {line.split()[0]}: command not found")

    def handle_exec(self, line: str) -> None:
        p = self.platform
        if line in ("exit", "logout", "quit"):
            if p.linux_login:
                self.in_linux = True
                return
            raise _Closed
        if line in ("configure", "configure terminal", "config terminal", "conf t"):
            self.config, self.path = True, []
            if p.device_type == "cisco_ios":
                self.writeline("Enter configuration commands, one per line.  End with CNTL/Z.")
            return
        if line in ("enable", "end") or line.startswith("terminal "):
            self.writeline(p.exec_replies.get(line, ""))
            return
        if line in p.save_commands:
            self.state.save_cisco()
            self.writeline(p.save_commands[line])
            return
        if line in p.show_running:
            with self.state.lock:
                self.writeline(self.state.render_cisco(self.state.running, line))
            return
        if line in ("show startup-config", "show startup-configuration"):
            with self.state.lock:
                self.writeline(self.state.render_cisco(self.state.startup, line))
            return
        if line in ("show version", "show hostname"):
            self.writeline(f"{p.vendor}\nHostname: {self.hostname}")
            return
        self.invalid(line, line.split()[0])

    def handle_config(self, line: str) -> None:
        if line.startswith("!"):
            return
        if line == "end":
            self.config, self.path = False, []
            return
        if line == "exit":
            if self.path:
                self.path = self.path[:-1]
            else:
                self.config = False
            return
        if line.startswith("do "):
            self.handle_exec(line[3:].strip())
            return
        first = line.split()[0]
        exec_ok = self.platform.device_type != "cisco_ios"
        if exec_ok and (first in ("show", "write") or line in self.platform.save_commands):
            self.handle_exec(line)
            return
        bad = self.malformed(line)
        if bad is None and line == "no":
            bad = "no"
        if bad is not None:
            self.invalid(line, bad)
            return
        token = self.state.rejected_by(line)
        if token is not None:
            self.writeline(self.platform.reject_text.format(token=token))
            return
        body = line[3:].strip() if line.startswith("no ") else line
        if _TOP_SECTIONS.match(line):
            self.state.apply_cisco([], line)
            self.path = [line]
            return
        if line.startswith("no ") and _TOP_SECTIONS.match(body):
            self.state.apply_cisco([], line)
            self.path = []
            return
        nested = _NESTED.get(self.path[0].split()[0]) if self.path else None
        if nested and nested.match(body):
            parent = self.path[:1] if len(self.path) < 3 else self.path[:2]
            if len(self.path) == 2 and nested.match(self.path[1]) and body.startswith("address"):
                parent = self.path[:2]
            self.state.apply_cisco(parent, line)
            self.path = [*parent, line] if not line.startswith("no ") else parent
            return
        self.state.apply_cisco(self.path, line)


class JunosShell(BaseShell):
    """Junos: ``user@host> `` operational mode, ``configure`` enters ``[edit]`` /
    ``user@host# ``; ``set``/``delete`` edit a candidate, ``commit`` (``check``, ``confirmed``,
    ``and-quit``) activates it, ``rollback`` discards it."""

    OP_REPLIES = {
        "set cli screen-width 511": "Screen width set to 511",
        "set cli complete-on-space off": "Disabling complete-on-space",
        "set cli screen-length 0": "Screen length set to 0",
    }
    CONFIG_COMMANDS = (
        "set",
        "delete",
        "edit",
        "top",
        "up",
        "exit",
        "quit",
        "commit",
        "rollback",
        "show",
        "run",
        "status",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.config = False
        self.edit: list[str] = []
        self.confirm_exit = False
        self.user = "admin"

    def intro(self) -> str:
        return "--- JUNOS 23.4R1.10 Kernel 64-bit  JNPR-15.0-20231208.0c6e8f6_buil\n"

    def prompt(self) -> str:
        if self.confirm_exit:
            return "Exit with uncommitted changes? [yes,no] (yes) "
        if not self.config:
            return f"{self.user}@{self.hostname}> "
        context = "[edit" + (" " + " ".join(self.edit) if self.edit else "") + "]"
        return f"\n{context}\n{self.user}@{self.hostname}# "

    def handle(self, raw: str) -> None:
        line = raw.strip()
        if self.confirm_exit:
            self.confirm_exit = False
            if line in ("", "yes", "y"):
                self.leave_config()
            return
        if not line:
            return
        if self.config:
            self.handle_config(line)
        else:
            self.handle_op(line)

    def leave_config(self) -> None:
        self.writeline("Exiting configuration mode")
        self.config, self.edit = False, []

    def show_configuration(self, statements: list[str], pipe: str) -> None:
        if "compare" in pipe:
            self.writeline(self.compare())
            return
        self.writeline("\n".join(f"set {s}" for s in statements))

    def compare(self) -> str:
        running, candidate = self.state.running, self.state.candidate
        minus = [f"- set {s}" for s in running if s not in candidate]
        plus = [f"+ set {s}" for s in candidate if s not in running]
        return "\n".join(minus + plus)

    def handle_op(self, line: str) -> None:
        if line in ("exit", "quit", "logout"):
            raise _Closed
        if line in self.OP_REPLIES:
            self.writeline(self.OP_REPLIES[line])
            return
        if line.startswith("set cli "):
            return
        if line in ("configure", "configure private", "configure exclusive", "edit"):
            if self.state.junos_uncommitted:
                self.writeline("The configuration has been changed but not committed")
            self.writeline("Entering configuration mode")
            self.config, self.edit = True, []
            return
        if line.startswith("show configuration"):
            with self.state.lock:
                self.show_configuration(self.state.running, line)
            return
        if line == "show version":
            self.writeline(f"Hostname: {self.hostname}\nModel: vqfx-10000\nJunos: 23.4R1.10")
            return
        self.writeline(self.caret(self.prompt(), line, line.split()[0]))
        self.writeline("unknown command.")

    def error(self, line: str, token: str, text: str) -> None:
        self.writeline(self.caret(f"{self.user}@{self.hostname}# ", line, token))
        self.writeline(text)

    def handle_config(self, line: str) -> None:
        words = line.split()
        first = words[0]
        if first not in self.CONFIG_COMMANDS:
            self.error(line, first, "unknown command.")
            return
        bad = self.malformed(line)
        if bad is not None:
            self.error(line, bad, "syntax error.")
            return
        rest = " ".join([*self.edit, *words[1:]])
        if first == "set":
            if len(words) < 3:
                self.error(line, first, "syntax error, expecting <statement>.")
                return
            self.state.junos_set(rest)
        elif first == "delete":
            if len(words) < 2 and not self.edit:
                self.error(line, first, "syntax error, expecting <statement>.")
                return
            if not self.state.junos_delete(rest):
                self.writeline("warning: statement not found")
        elif first == "edit":
            self.edit = [*self.edit, *words[1:]]
        elif first == "top":
            self.edit = []
        elif first == "up":
            self.edit = self.edit[:-1]
        elif first in ("exit", "quit"):
            if self.edit and line in ("exit", "quit"):
                self.edit = self.edit[:-1]
            elif self.state.junos_uncommitted:
                self.confirm_exit = True
            else:
                self.leave_config()
        elif first == "commit":
            self.commit(line)
        elif first == "rollback":
            self.state.junos_rollback()
            self.writeline("load complete")
        elif first == "show":
            with self.state.lock:
                self.show_configuration(self.state.candidate, line)
        elif first == "run":
            self.handle_op(line[4:].strip())

    def commit(self, line: str) -> None:
        check = line.startswith("commit check")
        error = self.state.junos_commit(check_only=check)
        if error is not None:
            self.writeline(error)
            return
        if check:
            self.writeline("configuration check succeeds")
            return
        if line.startswith("commit confirmed"):
            minutes = next((w for w in line.split()[2:] if w.isdigit()), "10")
            self.writeline(
                f"commit confirmed will be automatically rolled back in {minutes} minutes"
            )
        self.writeline("commit complete")
        if line.endswith("and-quit"):
            self.leave_config()


def make_shell(*args: Any, nos: Any, **kwargs: Any) -> BaseShell:
    """FakeNOS shell-plugin entry point: pick the shell for the device's platform."""
    cls = JunosShell if nos.device.platform.family == "junos" else CiscoLikeShell
    return cls(*args, nos=nos, **kwargs)


# --------------------------------------------------------------------------------------------
# SSH server
# --------------------------------------------------------------------------------------------


class _ChannelIO:
    """Reads lines from a paramiko channel in the shell's own thread, echoing what it reads
    like a terminal does, and writes the shell's output back."""

    def __init__(self, channel: paramiko.Channel, is_running: threading.Event) -> None:
        self.channel = channel
        self.is_running = is_running
        self.buffer = ""
        self.skip_lf = False
        channel.settimeout(0.2)

    def readline(self) -> str | None:
        while self.is_running.is_set():
            for i, ch in enumerate(self.buffer):
                if ch in "\r\n":
                    line, self.buffer = self.buffer[:i], self.buffer[i + 1 :]
                    if ch == "\r" and self.buffer.startswith("\n"):
                        self.buffer = self.buffer[1:]
                    return line
            try:
                data = self.channel.recv(4096)
            except TimeoutError:
                if self.channel.closed or self.channel.eof_received:
                    return None
                continue
            except (OSError, EOFError):
                return None
            if not data:
                return None
            text = data.decode("utf-8", "replace")
            self.write(text.replace("\r\n", "\n").replace("\r", "\n"))
            self.buffer += text
        return None

    def write(self, text: str) -> None:
        with contextlib.suppress(OSError, EOFError):
            self.channel.sendall(text.replace("\r\n", "\n").replace("\n", "\r\n").encode())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.channel.close()


class RecordingSshServer(ParamikoSshServer):
    """FakeNOS's paramiko SSH server with a one-thread-per-session loop (see module doc) and
    without SO_REUSEPORT, so a port already taken fails loudly instead of being shared."""

    def _bind_sockets(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, True)
        self._socket.settimeout(self.timeout)
        self._socket.bind((self.address, self.port))

    def connection_function(self, client: socket.socket, is_running: threading.Event) -> None:
        session = paramiko.Transport(client)
        with self._active_sessions_lock:
            self._active_sessions.add(session)
        try:
            session.add_server_key(self._ssh_server_key)
            server = ParamikoSshServerInterface(
                ssh_banner=self.ssh_banner, username=self.username, password=self.password
            )
            try:
                session.start_server(server=server)
            except (paramiko.SSHException, EOFError, OSError):
                return
            channel = session.accept(timeout=30)
            if channel is None:
                return
            io = _ChannelIO(channel, is_running)
            shell = self.shell(
                stdin=io,
                stdout=io,
                nos=self.nos,
                nos_inventory_config=self.nos_inventory_config,
                is_running=is_running,
                **self.shell_configuration,
            )
            shell.start()
        finally:
            with contextlib.suppress(Exception):
                session.close()
            with self._active_sessions_lock:
                self._active_sessions.discard(session)
