"""What every vendor shell shares: FakeNOS's shell-plugin signature, the read-answer loop, and
the checks that make a line malformed (a poison token, unprintable text, an odd quote, a first
word that is no keyword)."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from typing import Any

from fabric.testbed.fakenos_peer.state import SwitchState

log = logging.getLogger(__name__)

POISON_TOKEN = "INVALID-TEST"  # noqa: S105 - a test marker, not a secret
_PRINTABLE = re.compile(r"^[\x20-\x7e]*$")
_KEYWORD = re.compile(r"^[a-z][a-z0-9-]*$")


class SessionClosed(Exception):
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
            except SessionClosed:
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
