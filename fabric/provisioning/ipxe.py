"""The iPXE scripts the portal serves on the provisioning network.

DHCP sends iPXE to the chain script, which asks for the script of the NIC it booted from by MAC
(`${netX/mac}` is the most recently opened device's). That script boots the kernel with the
server's NoCloud seed on its command line (`ds=nocloud-net;s=<portal>/metadata/<token>/`), from
which cloud-init, or the lab's stand-in for it, takes the hostname and the orderer's keys. A
server that no live order holds is told to boot from its own disk; a server in cleaning boots
the cleaning job (`storefront.clean=1` and its signed report URL on the kernel line).

iPXE splits a line at whitespace and treats a token that is exactly `;`, `||` or `&&` as a
command separator, `#` at a token's start as a comment and `${...}` as a setting, so every
value here is checked (fabric.provisioning.dnsmasq) to hold none of them: the seed's `;` is
inside one token and stays the kernel's."""

from __future__ import annotations

from fabric.networks.safe import UnsafeValue
from fabric.provisioning.dnsmasq import hostname, url

CHAIN_PATH = "/provisioning/ipxe/"


def chain_script(*, portal_url: str) -> str:
    base = url(portal_url.rstrip("/"))
    return "#!ipxe\n" + f"chain --autofree {base}{CHAIN_PATH}${{netX/mac}}\n"


def seed_url(*, portal_url: str, seed_path: str) -> str:
    """The NoCloud seed (a directory URL: cloud-init appends meta-data and user-data)."""
    if not seed_path.startswith("/") or not seed_path.endswith("/"):
        raise UnsafeValue(f"{seed_path!r} is not a seed path (/.../).")
    return url(portal_url.rstrip("/") + seed_path)


def boot_script(*, name: str, seed: str, kernel_url: str, initrd_url: str) -> str:
    """Boot the image with `seed` as its NoCloud datasource."""
    return "\n".join(
        [
            "#!ipxe",
            f"echo {hostname(name)}: booting with its NoCloud seed from the portal",
            f"kernel {url(kernel_url)} initrd=initrd ip=dhcp ds=nocloud-net;s={url(seed)}",
            f"initrd --name initrd {url(initrd_url)}",
            "boot",
            "",
        ]
    )


def cleaning_script(*, name: str, report_url: str, kernel_url: str, initrd_url: str) -> str:
    """Boot the cleaning job (fabric.services.cleaning): it erases the server's disks and
    POSTs its report (`cleaned`, or why not) to `report_url`. No NoCloud seed: nothing of a
    tenant is handed to a server being cleaned."""
    return "\n".join(
        [
            "#!ipxe",
            f"echo {hostname(name)}: cleaning, erasing its disks",
            f"kernel {url(kernel_url)} initrd=initrd ip=dhcp storefront.clean=1 "
            f"storefront.report={url(report_url)}",
            f"initrd --name initrd {url(initrd_url)}",
            "boot",
            "",
        ]
    )


def local_boot_script(*, name: str) -> str:
    """No live order holds the server: leave iPXE and boot from the next device (its disk)."""
    return f"#!ipxe\necho {hostname(name)}: no order to provision, booting from disk\nexit\n"
