"""The Cisco-like shell (EOS, NX-OS, Enterprise SONiC, IOS): exec and config modes, the
sections that open sub-modes, each vendor's mode names in the prompt."""

from __future__ import annotations

import re
from typing import Any

from fabric.testbed.fakenos_peer.platforms import Platform
from fabric.testbed.fakenos_peer.shell import BaseShell, SessionClosed

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
            raise SessionClosed
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
            raise SessionClosed
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
