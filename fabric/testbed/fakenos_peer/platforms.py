"""The platform table: what each vendor's CLI looks like to netmiko (prompts, indents, save
commands and their replies, error texts)."""

from __future__ import annotations

from dataclasses import dataclass, field


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
