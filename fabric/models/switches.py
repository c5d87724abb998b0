from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.db import models
from django.db.models import Q

from fabric.models.fields import InetField
from fabric.models.nodes import rack_span


class Switch(models.Model):
    class Platform(models.TextChoices):
        """netmiko device types, plus the test bed's Linux bridges."""

        ARISTA_EOS = "arista_eos", "Arista EOS"
        CISCO_NXOS = "cisco_nxos", "Cisco NX-OS"
        CISCO_IOS = "cisco_ios", "Cisco IOS"
        JUNIPER_JUNOS = "juniper_junos", "Juniper Junos"
        SONIC = "dell_sonic", "SONiC"
        NVIDIA_CUMULUS = "linux", "NVIDIA Cumulus / NVUE"
        NVIDIA_UFM = "ufm", "NVIDIA UFM (InfiniBand)"
        LINUX_TESTBED = "linux_netns", "Linux network namespace (test bed)"

    class Role(models.TextChoices):
        LEAF = "leaf", "Leaf"
        SPINE = "spine", "Spine"
        STORAGE = "storage", "Storage"
        OOB = "oob", "Out-of-band"
        IB = "ib", "InfiniBand"

    name = models.CharField(max_length=64, unique=True)
    site = models.ForeignKey("fabric.Site", on_delete=models.PROTECT, related_name="switches")
    pod = models.ForeignKey(
        "fabric.Pod", on_delete=models.PROTECT, null=True, blank=True, related_name="switches"
    )
    rack = models.ForeignKey(
        "fabric.Rack", on_delete=models.PROTECT, null=True, blank=True, related_name="switches"
    )
    rack_position = models.PositiveSmallIntegerField(null=True, blank=True)
    rack_units = models.PositiveSmallIntegerField(default=1)
    vendor = models.CharField(max_length=64)
    model = models.CharField(max_length=64, blank=True)
    serial = models.CharField(max_length=64, unique=True, null=True, blank=True)
    platform = models.CharField(max_length=32, choices=Platform.choices)
    os_version = models.CharField(max_length=64, blank=True)
    management_address = InetField()
    role = models.CharField(max_length=16, choices=Role.choices)
    rail = models.PositiveSmallIntegerField(null=True, blank=True)
    management_port = models.PositiveIntegerField(default=22)
    username = models.CharField(max_length=64, blank=True)
    credentials_ref = models.CharField(
        max_length=120, blank=True, help_text="env:VARIABLE holding the password; never the secret"
    )

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["management_address", "management_port"], name="switch_management_unique"
            ),
            models.CheckConstraint(
                condition=Q(rack__isnull=True, rack_position__isnull=True)
                | Q(rack__isnull=False, rack_position__gte=1),
                name="switch_rack_position_with_rack",
            ),
            ExclusionConstraint(
                name="switch_rack_units_do_not_overlap",
                expressions=[
                    ("rack", RangeOperators.EQUAL),
                    (rack_span("rack_position", "rack_units"), RangeOperators.OVERLAPS),
                ],
                condition=Q(rack__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class SwitchPort(models.Model):
    switch = models.ForeignKey(Switch, on_delete=models.CASCADE, related_name="ports")
    name = models.CharField(max_length=32)
    speed_gbps = models.PositiveIntegerField(default=0)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["switch__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["switch", "name"], name="port_name_unique_in_switch")
        ]

    def __str__(self) -> str:
        return f"{self.switch.name}:{self.name}"
