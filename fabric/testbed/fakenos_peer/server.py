"""FakeNOS's paramiko SSH server with the session loop replaced: the stock one echoes one byte
per 10 ms through two helper threads, which makes a config session take seconds; here one
thread per session reads, echoes and answers whole lines."""

from __future__ import annotations

import contextlib
import socket
import threading

import paramiko
from fakenos.plugins.servers.ssh_server_paramiko import (
    ParamikoSshServer,
    ParamikoSshServerInterface,
)


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
