"""THE LAB'S STAND-IN FOR AN OS IMAGE. Not production code: a real server boots iPXE and then
an image whose cloud-init does these steps (docs/orders.md); a lab server has no kernel of its
own to boot, so this script does what iPXE and cloud-init would, in the same order, against the
same portal endpoints. Debian's cloud-init is not used: it is not installed by `make`, and it
expects a whole machine (systemd units, its own /var/lib/cloud) that a lab server's namespaces
are not.

The lab runs it as the boot command of a lab server (``standin_boot()`` in lab.py:
``/usr/bin/python3 -I -S /run/lab/boot.py``, standard library only, inside the server's
namespaces and private mounts), as root:

1. DHCP on the provisioning NIC (busybox udhcpc, announcing itself as iPXE with option 175 so
   dnsmasq answers with the portal's chain URL as the boot file), until a lease comes.
2. iPXE: fetch the chain script, then the script of this NIC's MAC; ``exit`` means no order
   holds the server (boot from disk: start sshd if the disk has host keys, else idle). Else the
   ``kernel`` line's ``ds=nocloud-net;s=<seed>`` names the NoCloud seed.
3. cloud-init: fetch ``meta-data``, ``user-data`` (#cloud-config; the portal writes it as
   JSON, which is YAML too) and ``network-config`` (optional); apply the hostname, the users
   with their authorized keys (useradd in the server's private /etc and /home), the tenant
   NICs' addresses, fresh sshd host keys (``ssh-keygen -A`` in the private /etc/ssh) and
   Debian's sshd; then phone home: POST the host keys, instance id and hostname, as
   cloud-init's phone_home module does, to the URL the user-data gives.

A server in cleaning gets, instead, a kernel line with ``storefront.clean=1`` and
``storefront.report=<signed URL>``: the cleaning job erases the whole disk (/run/lab/disk: its
/etc with the users made, /etc/ssh, /root, /home, /var, /tmp, and the image mark, so the next
power on images a blank disk) and POSTs ``status=cleaned`` (or ``failed`` and why) there, as a
real cleaning image (Ironic's IPA) would after erasing the disks.

Each step says what it does on the console (the lab's console.log) and in /var/log/boot.log.
"""

import errno
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

NIC = os.environ.get("LAB_PROVISIONING_NIC", "eno1")
MAC = os.environ.get("LAB_PROVISIONING_MAC", "")
RUN = "/run/lab"
DISK = f"{RUN}/disk"  # the whole disk (init.py binds it there), what cleaning erases
LEASE = f"{RUN}/lease.json"
HOST_KEY_TYPES = ("rsa", "ecdsa", "ed25519")
SSHD_CONFIG = """\
# Written at boot by the lab's stand-in for an OS image (cloud-init's place).
Port 22
ListenAddress 0.0.0.0
HostKey /etc/ssh/ssh_host_ed25519_key
HostKey /etc/ssh/ssh_host_ecdsa_key
HostKey /etc/ssh/ssh_host_rsa_key
PidFile /run/sshd.pid
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AuthorizedKeysFile .ssh/authorized_keys
UsePAM no
PrintMotd no
Subsystem sftp /usr/lib/openssh/sftp-server
"""
UDHCPC_HOOK = """#!/bin/sh
# udhcpc's hook: put the lease on the NIC and write it down for the boot.
case "$1" in
  deconfig) ip addr flush dev "$interface"; ip link set "$interface" up;;
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    printf '{"ip": "%s", "mask": "%s", "boot_file": "%s", "server": "%s"}\\n' \\
      "$ip" "$mask" "$boot_file" "$siaddr" > "$LEASE_FILE";;
esac
"""


def say(text: str) -> None:
    line = f"[boot] {text}"
    print(line, flush=True)
    try:
        os.makedirs("/var/log", exist_ok=True)
        with open("/var/log/boot.log", "a") as log:
            log.write(time.strftime("%Y-%m-%dT%H:%M:%SZ ", time.gmtime()) + line + "\n")
    except OSError:
        pass


def run(*argv: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done


def fetch(url: str, *, tries: int = 10, optional: bool = False) -> str | None:
    """GET `url` as text, retrying a few times (the portal may be busy); None for a 404 when
    `optional`."""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310  (http only)
                return answer.read().decode()
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and optional:
                return None
            error = exc
        except (urllib.error.URLError, OSError) as exc:
            error = exc
        time.sleep(min(0.5 * 2**attempt, 5))
    raise RuntimeError(f"GET {url}: {error}")


# --- 1. DHCP ------------------------------------------------------------------------------------


def dhcp() -> dict:
    hook = f"{RUN}/udhcpc-hook"
    with open(hook, "w") as out:
        out.write(UDHCPC_HOOK)
    os.chmod(hook, 0o755)  # noqa: S103  (root's own script on the server's tmpfs)
    run("ip", "link", "set", NIC, "up")
    attempt = 0
    while True:
        attempt += 1
        done = run(
            "busybox", "udhcpc", "-i", NIC, "-f", "-q", "-n", "-t", "5", "-T", "1",
            "-s", hook, "-x", "0xaf:01",
            check=False, env={**os.environ, "LEASE_FILE": LEASE},
        )  # fmt: skip
        if done.returncode == 0 and os.path.exists(LEASE):
            with open(LEASE) as lease:
                found = json.load(lease)
            say(f"DHCP: {NIC} ({MAC}) leased {found['ip']}/{found['mask']}, boot file "
                f"{found['boot_file']}")  # fmt: skip
            return found
        if attempt in (1, 5) or attempt % 30 == 0:
            say(f"DHCP: no lease on {NIC} yet (attempt {attempt}); trying again")
        time.sleep(1)


# --- 2. iPXE ------------------------------------------------------------------------------------


def ipxe(boot_file: str) -> dict | None:
    """{"seed": the NoCloud seed URL}, {"clean": the cleaning report URL} (a server being
    cleaned boots the cleaning job), or None when the server is to boot from its disk."""
    chain = fetch(boot_file)
    found = re.search(r"^chain\s+(?:--\S+\s+)*(\S+)", chain, re.M)
    if not chain.startswith("#!ipxe") or not found:
        raise RuntimeError(f"{boot_file} is not an iPXE chain script")
    url = found.group(1).replace("${netX/mac}", MAC)
    script = fetch(url)
    say(f"iPXE: fetched {url}")
    for line in script.splitlines():
        words = line.split()
        if words[:1] == ["exit"]:
            return None
        if words[:1] == ["kernel"]:
            if "storefront.clean=1" in words[1:]:
                reports = [w.split("=", 1)[1] for w in words if w.startswith("storefront.report=")]
                if not reports:
                    raise RuntimeError(f"{url}: a cleaning job with no report URL")
                return {"clean": reports[0]}
            for word in words[1:]:
                if word.startswith("ds=nocloud-net;s="):
                    return {"seed": word.split(";s=", 1)[1]}
    raise RuntimeError(f"{url}: no kernel line with a NoCloud seed")


# --- the cleaning job ---------------------------------------------------------------------------


def _erase(path: str) -> None:
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    for entry in os.scandir(path):
        _erase(entry.path)
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno != errno.EBUSY:  # a mount point of this boot (/etc/ssh, ...) stays
            raise


def erase_disk() -> int:
    """Erase everything on the disk (DISK: the lab's disk folder, as a block device is to a
    machine): /etc with the users and sudoers the last tenant's boot made, /etc/ssh with its
    host keys, /root, /home, /var and /tmp, and the image mark, so the next power on images a
    blank disk. Returns how many entries were erased; raises when anything is left."""
    if not os.path.isdir(DISK):
        raise RuntimeError(f"no disk at {DISK}")
    erased = sum(len(folders) + len(files) for _, folders, files in os.walk(DISK))
    for entry in os.scandir(DISK):
        if entry.is_dir(follow_symlinks=False):
            for inner in os.scandir(entry.path):
                _erase(inner.path)
        else:
            os.unlink(entry.path)
    left = [
        os.path.join(folder, name) for folder, _folders, files in os.walk(DISK) for name in files
    ]
    if left:
        raise RuntimeError(f"{len(left)} file(s) left on the disk, e.g. {left[0]}")
    return erased


def report(url: str, status: str, detail: str) -> bool:
    """POST the cleaning job's report (`cleaned`, or what failed) to its signed URL."""
    body = urllib.parse.urlencode({"status": status, "detail": detail[:200]}).encode()
    for attempt in range(1, 11):
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                print(f"[boot] cleaning report: {answer.status}", flush=True)
                return True
        except urllib.error.HTTPError as exc:
            print(f"[boot] cleaning report refused: {exc.code}", flush=True)
            return False
        except (urllib.error.URLError, OSError) as exc:
            print(f"[boot] cleaning report: attempt {attempt} failed: {exc}", flush=True)
            time.sleep(min(attempt, 5))
    return False


def clean(url: str) -> int:
    """The cleaning job: erase the disk, then report. The console only (the disk's /var/log
    is erased too)."""
    say("cleaning: erasing the disk")
    try:
        erased = erase_disk()
    except Exception as exc:
        print(f"[boot] cleaning failed: {exc}", flush=True)
        report(url, "failed", f"erasing the disk: {exc}")
        return 1
    print(f"[boot] cleaning: erased {erased} entries; the disk is blank", flush=True)
    return 0 if report(url, "cleaned", f"erased {erased} entries; the disk is blank") else 1


# --- 3. cloud-init ------------------------------------------------------------------------------


def meta_data(text: str) -> dict:
    values = {}
    for line in text.splitlines():
        key, colon, value = line.partition(":")
        if colon and not line.startswith((" ", "#")):
            values[key.strip()] = value.strip().strip("'\"")
    return values


def cloud_config(text: str) -> dict:
    if not text.startswith("#cloud-config"):
        raise RuntimeError("user-data is not #cloud-config")
    body = text.split("\n", 1)[1] if "\n" in text else ""
    try:
        return json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise RuntimeError(f"the stand-in reads #cloud-config written as JSON only: {exc}") from exc


def set_hostname(name: str) -> None:
    socket.sethostname(name)
    with open("/etc/hostname", "w") as out:
        out.write(name + "\n")
    with open("/etc/hosts") as hosts:
        lines = [line for line in hosts.read().splitlines() if not line.startswith("127.0.1.1")]
    with open("/etc/hosts", "w") as out:
        out.write("\n".join([*lines, f"127.0.1.1\t{name}"]) + "\n")
    say(f"hostname {name}")


def add_user(user: dict) -> None:
    name = user["name"]
    if not re.fullmatch(r"[a-z_][a-z0-9_-]{0,31}", name):
        raise RuntimeError(f"{name!r} is not a user name")
    if run("id", "-u", name, check=False).returncode != 0:
        run("useradd", "--create-home", "--shell", user.get("shell") or "/bin/bash", name)
    # No password, but not locked ('!' would lock the account for sshd without PAM).
    run("usermod", "--password", "*", name)
    home = run("getent", "passwd", name).stdout.split(":")[5]
    ssh = os.path.join(home, ".ssh")
    os.makedirs(ssh, mode=0o700, exist_ok=True)
    keys = [k.strip() for k in user.get("ssh_authorized_keys") or [] if k.strip()]
    path = os.path.join(ssh, "authorized_keys")
    with open(path, "w") as out:
        out.write("".join(f"{key}\n" for key in keys))
    os.chmod(path, 0o600)
    run("chown", "-R", f"{name}:{name}", ssh)
    if user.get("sudo"):
        os.makedirs("/etc/sudoers.d", exist_ok=True)
        with open(f"/etc/sudoers.d/90-cloud-init-{name}", "w") as out:
            out.write(f"{name} {user['sudo']}\n")
        os.chmod(f"/etc/sudoers.d/90-cloud-init-{name}", 0o440)
    say(f"user {name} with {len(keys)} authorized key(s)")


def configure_network(config: dict | None) -> None:
    """Netplan-style version 2 `ethernets`: each NIC, matched by name or MAC, gets its
    addresses (NICs that are not cabled are skipped)."""
    if not config:
        return
    config = config.get("network", config)
    by_mac = {}
    for nic in os.listdir("/sys/class/net"):
        try:
            with open(f"/sys/class/net/{nic}/address") as address:
                by_mac[address.read().strip()] = nic
        except OSError:
            pass
    for key, ethernet in (config.get("ethernets") or {}).items():
        match = ethernet.get("match") or {}
        nic = by_mac.get(str(match.get("macaddress", "")).lower()) or match.get("name") or key
        if not os.path.exists(f"/sys/class/net/{nic}"):
            say(f"network: {key} ({nic}) is not cabled; skipped")
            continue
        run("ip", "link", "set", nic, "up")
        for address in ethernet.get("addresses") or []:
            run("ip", "addr", "replace", address, "dev", nic)
            say(f"network: {nic} {address}")


def start_sshd() -> None:
    os.makedirs("/etc/ssh", exist_ok=True)
    if not os.path.exists("/etc/ssh/sshd_config"):
        with open("/etc/ssh/sshd_config", "w") as out:
            out.write(SSHD_CONFIG)
    fresh = not os.path.exists("/etc/ssh/ssh_host_ed25519_key")
    run("ssh-keygen", "-A")
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    run("/usr/sbin/sshd", "-t")
    run("/usr/sbin/sshd")  # daemonizes; the lab's init reaps it
    say(f"sshd started ({'fresh' if fresh else 'existing'} host keys)")


def host_keys() -> dict:
    keys = {}
    for kind in HOST_KEY_TYPES:
        try:
            with open(f"/etc/ssh/ssh_host_{kind}_key.pub") as key:
                keys[f"pub_key_{kind}"] = " ".join(key.read().split()[:2])
        except FileNotFoundError:
            pass
    return keys


def phone_home(config: dict, meta: dict) -> None:
    """cloud-init's phone_home: a form POST of the host keys, instance id and hostname."""
    settings = config.get("phone_home") or {}
    url = settings.get("url")
    if not url:
        say("phone home: the user-data names no URL; skipped")
        return
    url = url.replace("$INSTANCE_ID", meta.get("instance-id", ""))
    fields = {
        **host_keys(),
        "instance_id": meta.get("instance-id", ""),
        "hostname": socket.gethostname(),
        "fqdn": socket.getfqdn(),
    }
    wanted = settings.get("post") or "all"
    if wanted != "all":
        fields = {k: v for k, v in fields.items() if k in wanted}
    body = urllib.parse.urlencode(fields).encode()
    tries = int(settings.get("tries") or 10)
    for attempt in range(1, tries + 1):
        request = urllib.request.Request(url, data=body, method="POST")  # noqa: S310
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:  # noqa: S310
                say(f"phone home: {answer.status} from {urllib.parse.urlsplit(url).path}")
                return
        except (urllib.error.URLError, OSError) as exc:
            say(f"phone home: attempt {attempt} of {tries} failed: {exc}")
            time.sleep(min(attempt, 5))
    say("phone home: gave up")


def main() -> int:
    os.makedirs(RUN, exist_ok=True)
    say(f"{os.environ.get('LAB_SERVER_NAME', '?')}: lab stand-in for an OS image booting")
    lease = dhcp()
    if not lease.get("boot_file"):
        say("DHCP: no boot file offered; booting from disk")
        found = None
    else:
        found = ipxe(lease["boot_file"])
    if found and "clean" in found:
        return clean(found["clean"])
    seed = found["seed"] if found else None
    if seed is None:
        say("iPXE: no order holds this server; booting from disk")
        if os.path.exists("/etc/ssh/ssh_host_ed25519_key"):
            start_sshd()
        return 0
    say(f"cloud-init: NoCloud seed {seed}")
    meta = meta_data(fetch(seed + "meta-data"))
    config = cloud_config(fetch(seed + "user-data"))
    network = fetch(seed + "network-config", optional=True)
    set_hostname(config.get("hostname") or meta.get("local-hostname") or "localhost")
    for user in config.get("users") or []:
        if isinstance(user, dict):
            add_user(user)
    configure_network(json.loads(network) if network and network.strip() else None)
    start_sshd()
    phone_home(config, meta)
    say("boot finished")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as exc:  # the console says why the boot stopped
        say(f"boot failed: {exc}")
        sys.exit(1)
