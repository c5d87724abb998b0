"""FakeNOS plugins that turn FakeNOS devices into switches that accept and record configuration.

FakeNOS (``fakenos`` on PyPI) runs every device of an inventory in one process: a paramiko SSH
server per device (a *server* plugin) hands each session to a *shell* plugin, which answers the
commands of a *NOS* (``fakenos.core.nos.Nos``; its ``device`` attribute may hold any object). Its
built-in platforms only answer canned ``show`` commands, so this package supplies:

* ``platforms`` — the platform table: what each vendor's CLI looks like to netmiko;
* ``state`` — :class:`SwitchState`, one device's configuration (running, startup, Junos
  candidate), kept in memory behind a lock and mirrored to ``<state_dir>/state.json``;
* ``shell``, ``cisco``, ``junos`` — :class:`BaseShell` and the vendor shells
  (:class:`CiscoLikeShell` for EOS, NX-OS, Enterprise SONiC and IOS; :class:`JunosShell`) with
  the prompts, config modes, save/commit commands and error texts netmiko's drivers expect;
* ``server`` — :class:`RecordingSshServer`, FakeNOS's paramiko server with a faster session
  loop.

Lines containing a *poison* token (``INVALID-TEST``) or malformed lines are answered with the
vendor's error text and not recorded. *Reject* tokens (per device, in ``<state_dir>/reject``,
re-read on every line) make a device refuse a command the way that vendor does: EOS/NX-OS/SONiC
at once, Junos at ``commit`` (``error: configuration check-out failed``).
"""

from __future__ import annotations

from typing import Any

from fabric.testbed.fakenos_peer.cisco import CiscoLikeShell
from fabric.testbed.fakenos_peer.junos import JunosShell
from fabric.testbed.fakenos_peer.platforms import PLATFORMS, Platform
from fabric.testbed.fakenos_peer.server import RecordingSshServer
from fabric.testbed.fakenos_peer.shell import POISON_TOKEN, BaseShell
from fabric.testbed.fakenos_peer.state import SwitchState

__all__ = [
    "PLATFORMS",
    "POISON_TOKEN",
    "BaseShell",
    "CiscoLikeShell",
    "JunosShell",
    "Platform",
    "RecordingSshServer",
    "SwitchState",
    "make_shell",
]


def make_shell(*args: Any, nos: Any, **kwargs: Any) -> BaseShell:
    """FakeNOS shell-plugin entry point: pick the shell for the device's platform."""
    cls = JunosShell if nos.device.platform.family == "junos" else CiscoLikeShell
    return cls(*args, nos=nos, **kwargs)
