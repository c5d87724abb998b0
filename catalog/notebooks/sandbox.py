"""How a notebook server is contained on the hub's host: each portal user's servers run as that
user's own unprivileged system account (home 0700, no login password), in a private mount
namespace where the platform's sockets and files are hidden (/run, /tmp, the storefront's var/
under empty tmpfs; /proc shows only the user's own processes), and an nftables table lets the
accounts' group open no loopback connection except to the hub's API (so not the database,
Redis, the broker, the portal, localstripe, the model servers or another user's server).

Names that reach useradd and nft are built here from validated parts (a configured prefix, the
hub's `u<id>` user names and integers), never from text a user typed.

`python -m catalog.notebooks.sandbox --prefix P --mask PATH ... -- CMD ...` is the launcher
the hub's spawner runs as root inside `unshare --mount`: it masks, drops to the account and
execs CMD (jupyterhub-singleuser from the notebook environment)."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import psutil

PREFIX = re.compile(r"^[a-z][a-z0-9]{1,15}$")
HUB_USER = re.compile(r"^u[0-9]{1,12}$")
SCRATCH = ("/tmp", "/var/tmp", "/dev/shm")  # noqa: S108  (masked, not used)
HIDDEN = ("/run",)  # the machine's service sockets: PostgreSQL, MariaDB, Redis ...


class SandboxError(RuntimeError):
    """The host cannot contain notebooks (not root, a tool missing, an unusable path)."""


def _run(*argv: str, input: str | None = None) -> None:
    try:
        subprocess.run(argv, check=True, capture_output=True, text=True, input=input)
    except FileNotFoundError as exc:
        raise SandboxError(f"{argv[0]} is missing (Debian: passwd, nftables).") from exc
    except subprocess.CalledProcessError as exc:
        raise SandboxError(f"{' '.join(argv[:2])} failed: {exc.stderr.strip()}") from exc


def require_root() -> None:
    if os.geteuid() != 0:
        raise SandboxError(
            "Notebook servers run as per-user system accounts behind an nftables table: "
            "start JupyterHub as root."
        )


def account_name(prefix: str, hub_user: str) -> str:
    if not PREFIX.match(prefix) or not HUB_USER.match(hub_user):
        raise SandboxError(f"not a notebook account: {prefix!r} {hub_user!r}")
    return f"{prefix}-{hub_user}"


def group_ensure(prefix: str) -> int:
    """The group every notebook account of this install has as its primary group."""
    account_name(prefix, "u0")  # validates the prefix
    try:
        return grp.getgrnam(prefix).gr_gid
    except KeyError:
        _run("groupadd", "--system", prefix)
        return grp.getgrnam(prefix).gr_gid


def account_ensure(*, prefix: str, hub_user: str, homes: Path) -> pwd.struct_passwd:
    """The user's account and private home, created on their first start."""
    name = account_name(prefix, hub_user)
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    group_ensure(prefix)
    home = homes / name
    _run(
        "useradd",
        "--system",
        "--gid",
        prefix,
        "--no-user-group",
        "--home-dir",
        str(home),
        "--create-home",
        "--skel",
        "/etc/skel",
        "--shell",
        "/bin/bash",
        "--comment",
        "storefront notebook",
        name,
    )
    home.chmod(0o700)
    return pwd.getpwnam(name)


def accounts_remove(*, prefix: str, homes: Path) -> None:
    """Every account of this install, its home and its group (the tests' teardown)."""
    try:
        gid = grp.getgrnam(prefix).gr_gid
    except KeyError:
        return
    for entry in pwd.getpwall():
        if entry.pw_gid == gid and entry.pw_name.startswith(f"{prefix}-"):
            for process in psutil.process_iter(["uids"]):
                if process.info["uids"] and process.info["uids"].real == entry.pw_uid:
                    with contextlib.suppress(psutil.Error):
                        process.kill()
            _run("userdel", "--remove", entry.pw_name)
    _run("groupdel", prefix)
    shutil.rmtree(homes, ignore_errors=True)


def reachable_by_others(path: Path, what: str) -> None:
    """The notebook accounts must be able to get to `path` (the notebook environment, their
    homes): every folder above it traversable by others (a checkout under /root, 0700, is not)."""
    for parent in Path(path).resolve().parents:
        if parent.stat().st_mode & 0o001 == 0:
            raise SandboxError(f"{what} {path}: {parent} is not traversable by other users")


def homes_prepare(homes: Path) -> None:
    """Homes sit outside var/ (masked in the sandbox); the folder is traversable, not listable."""
    homes.mkdir(parents=True, exist_ok=True)
    homes.chmod(0o711)
    reachable_by_others(homes, "notebook homes")


def _table(prefix: str) -> str:
    account_name(prefix, "u0")  # validates the prefix
    return f"storefront_{prefix}"


def firewall_apply(*, prefix: str, gid: int, hub_api_port: int) -> None:
    """Notebook accounts may open no loopback connection but to the hub's API; answers on the
    connections the proxy opens to them pass, and the outside world stays reachable."""
    table = _table(prefix)
    ruleset = f"""
table inet {table}
delete table inet {table}
table inet {table} {{
  chain out {{
    type filter hook output priority 0; policy accept;
    meta skgid {int(gid)} jump notebook
  }}
  chain notebook {{
    ct state established,related accept
    oifname "lo" ip daddr 127.0.0.1 tcp dport {int(hub_api_port)} accept
    oifname "lo" meta l4proto tcp reject with tcp reset
    oifname "lo" reject
  }}
}}
"""
    _run("nft", "-f", "-", input=ruleset)


def firewall_remove(*, prefix: str) -> None:
    table = _table(prefix)
    _run("nft", "-f", "-", input=f"table inet {table}\ndelete table inet {table}\n")


# --- the launcher ------------------------------------------------------------------------------


def _mount_tmpfs(path: str, mode: str) -> None:
    if os.path.isdir(path):
        _run("mount", "-t", "tmpfs", "-o", f"mode={mode},nosuid,nodev,size=256m", "tmpfs", path)


def launch(argv: list[str]) -> None:
    """Runs as root inside a fresh mount namespace (unshare --mount --propagation private)."""
    split = argv.index("--")
    options, command = argv[:split], argv[split + 1 :]
    prefix = options[options.index("--prefix") + 1]
    masks = [options[i + 1] for i, word in enumerate(options) if word == "--mask"]
    account = pwd.getpwnam(account_name(prefix, os.environ.get("JUPYTERHUB_USER", "")))
    if account.pw_uid == 0:
        raise SandboxError("refusing to run a notebook as root")
    # The notebook environment may sit under a masked folder (a checkout in /tmp): hold on to
    # it and bind it back into the empty tmpfs.
    environment = Path(command[0]).parent.parent
    held = os.open(environment, os.O_PATH | os.O_DIRECTORY)
    for path in SCRATCH:
        _mount_tmpfs(path, "1777")
    for path in (*HIDDEN, *masks):
        _mount_tmpfs(path, "0755")
    if not os.path.exists(command[0]):
        os.makedirs(environment, mode=0o755, exist_ok=True)
        subprocess.run(
            ["mount", "--no-canonicalize", "--bind", f"/proc/self/fd/{held}", str(environment)],  # noqa: S607
            check=True,
            pass_fds=[held],
        )
    os.close(held)
    _run("mount", "-t", "proc", "-o", "hidepid=invisible,nosuid,nodev,noexec", "proc", "/proc")
    os.setgroups([])
    os.setgid(account.pw_gid)
    os.setuid(account.pw_uid)
    os.umask(0o077)
    bin_dir = str(Path(command[0]).parent)
    env = {
        key: value
        for key, value in os.environ.items()
        if key.startswith(("JUPYTERHUB_", "JPY_", "JUPYTER_", "CUDA_", "NVIDIA_", "LANG", "LC_"))
    }
    env.update(
        HOME=account.pw_dir,
        USER=account.pw_name,
        LOGNAME=account.pw_name,
        SHELL="/bin/bash",
        PATH=f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        VIRTUAL_ENV=str(Path(bin_dir).parent),
        # Kernel sockets (ipc) need a short path; this /tmp is the server's own tmpfs.
        JUPYTER_RUNTIME_DIR="/tmp/jupyter-runtime",  # noqa: S108
    )
    os.chdir(account.pw_dir)
    os.execve(command[0], command, env)  # noqa: S606  (an argument list, no shell)


if __name__ == "__main__":
    launch(sys.argv[1:])
