"""The Junos shell: operational mode, a candidate configuration edited with ``set`` and
``delete``, activated by ``commit``."""

from __future__ import annotations

from typing import Any

from fabric.testbed.fakenos_peer.shell import BaseShell, SessionClosed


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
            raise SessionClosed
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
