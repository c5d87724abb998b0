"""PID 1 of a lab server. The lab runs it as a script (``python -I -S init.py CONFIG``, standard
library only, no package imports) under ``unshare --pid --fork --mount-proc --uts --ipc`` inside
the server's network namespace. It puts the server's disk over the host's directories, gives
the server a fresh /run (the whole disk folder appears at /run/lab/disk, for a cleaning job to
erase), tells the lab it is up, runs the boot command and then reaps orphans
like any init, until the server loses power: the lab SIGKILLs this process and with it every
process of the PID namespace.

CONFIG is JSON: ``disk`` (the server's disk folder on the host), ``mounts`` ([subfolder,
target] in mount order), ``hostname``, ``info`` (written to /run/lab/server.json, as firmware
tables describe hardware), ``files`` (name -> text, written to /run/lab: the lab's stand-in
boot program, loaded as firmware loads a boot image), ``boot`` (argv), ``env`` (the boot
command's whole environment) and ``ready_fd`` (where to write ``up`` once the mounts are
in place)."""

import ctypes
import json
import os
import signal
import socket
import sys

MS_NOSUID = 2
MS_NODEV = 4
MS_BIND = 4096
MS_RDONLY = 1
MS_REMOUNT = 32
IMAGE_AT = "/run/lab/image"  # lab.IMAGE_AT
DISK_AT = "/run/lab/disk"

_libc = ctypes.CDLL(None, use_errno=True)


def _mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    done = _libc.mount(
        source.encode(),
        target.encode(),
        fstype.encode() if fstype else None,
        ctypes.c_ulong(flags),
        data.encode() if data else None,
    )
    if done != 0:
        error = ctypes.get_errno()
        raise OSError(error, f"mount {source} on {target}: {os.strerror(error)}")


def _say(text: str) -> None:
    print(f"[lab] {text}", flush=True)


def setup(config: dict) -> None:
    # Every disk folder is opened before anything is mounted: the disk may lie under a folder
    # about to be covered (a lab root under /tmp or a checkout under /root), and a bind from
    # /proc/self/fd/N follows the open folder, not its (hidden) path.
    held = []
    for sub, target in config["mounts"]:
        path = os.path.join(config["disk"], sub)
        held.append((os.open(path, os.O_PATH | os.O_DIRECTORY), target))
    disk = os.open(config["disk"], os.O_PATH | os.O_DIRECTORY)
    image = os.open(config["image"], os.O_PATH | os.O_DIRECTORY) if config.get("image") else None
    for fd, target in held:
        os.makedirs(target, exist_ok=True)
        _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND, None)
        os.close(fd)
    # /run is volatile on a real machine: a fresh tmpfs each boot (and the host's sockets in
    # /run stay out of sight).
    _mount("tmpfs", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=64m")
    os.makedirs("/run/lock")
    os.chmod("/run/lock", 0o1777)  # noqa: S103  (as on any machine)
    os.makedirs("/run/lab")
    # The whole disk, as a block device is to a machine: what a cleaning job erases.
    os.makedirs(DISK_AT)
    _mount(f"/proc/self/fd/{disk}", DISK_AT, None, MS_BIND, None)
    os.close(disk)
    if image is not None:  # the image's software, read-only, as an OS image's /usr would be
        os.makedirs(IMAGE_AT)
        _mount(f"/proc/self/fd/{image}", IMAGE_AT, None, MS_BIND, None)
        _mount("none", IMAGE_AT, None, MS_BIND | MS_REMOUNT | MS_RDONLY, None)
        os.close(image)
    with open("/run/lab/server.json", "w") as out:
        json.dump(config["info"], out, indent=2)
    for name, text in config.get("files", {}).items():  # what the lab hands the boot
        with open(os.path.join("/run/lab", os.path.basename(name)), "w") as out:
            out.write(text)
    socket.sethostname(config["hostname"])
    os.chdir("/")


def boot(config: dict) -> int:
    argv, env = config["boot"], config["env"]
    pid = os.fork()
    if pid == 0:
        try:
            os.setsid()
            os.execvpe(argv[0], argv, env)  # noqa: S606  (an argument list, no shell)
        except OSError as exc:
            _say(f"cannot start the boot command {argv[0]}: {exc}")
        os._exit(127)
    return pid


def main() -> None:
    config = json.loads(sys.argv[1])
    ready = config["ready_fd"]
    try:
        setup(config)
    except Exception as exc:  # the lab reads the console and reports it
        _say(f"setup failed: {exc}")
        sys.exit(1)
    first = boot(config)
    _say(f"{config['info']['name']} booting: {' '.join(config['boot'])}")
    os.write(ready, b"up\n")
    os.close(ready)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        if pid == first:
            _say(f"boot command ended ({os.waitstatus_to_exitcode(status)})")
    # No process left (whatever the boot started has ended): the machine stays on, idle.
    _say("no process left; idle until power off")
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
