from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import IntegerRangeField, RangeOperators
from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import Q

from fabric.models.fields import CidrField, InetField


class Prefix(models.Model):
    """A network; pools hand out addresses. Prefixes of one VRF never overlap."""

    class Role(models.TextChoices):
        MANAGEMENT = "management", "Management"
        BMC = "bmc", "BMC"
        TENANT = "tenant", "Tenant"
        STORAGE = "storage", "Storage"
        LOOPBACK = "loopback", "Loopback"
        FABRIC = "fabric", "Fabric point-to-point"

    site = models.ForeignKey(
        "fabric.Site", on_delete=models.PROTECT, null=True, blank=True, related_name="prefixes"
    )
    vrf = models.CharField(max_length=64, default="global")
    prefix = CidrField()
    role = models.CharField(max_length=16, choices=Role.choices)
    is_pool = models.BooleanField(default=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["vrf", "prefix"]
        verbose_name_plural = "prefixes"
        constraints = [
            ExclusionConstraint(
                name="prefix_no_overlap_in_vrf",
                expressions=[
                    ("vrf", RangeOperators.EQUAL),
                    (OpClass("prefix", name="inet_ops"), RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.prefix} ({self.vrf})"


class IPAddress(models.Model):
    prefix = models.ForeignKey(Prefix, on_delete=models.PROTECT, related_name="addresses")
    address = InetField()
    interface = models.ForeignKey(
        "fabric.NetworkInterface",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="addresses",
    )
    organization = models.ForeignKey(
        "portal.Organization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="ip_addresses",
    )
    description = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["address"]
        verbose_name = "IP address"
        constraints = [
            models.UniqueConstraint(fields=["prefix", "address"], name="ip_unique_in_prefix"),
        ]

    def __str__(self) -> str:
        return str(self.address)


class NumberPool(models.Model):
    """A range of VLAN ids, VNIs or InfiniBand partition keys at a site. Pools of one kind
    at one site never overlap, and no value is handed out twice."""

    class Kind(models.TextChoices):
        VLAN = "vlan", "VLAN"
        VNI = "vni", "VXLAN VNI"
        PKEY = "pkey", "InfiniBand PKey"

    LIMITS = {Kind.VLAN: (2, 4094), Kind.VNI: (1, 16_777_215), Kind.PKEY: (1, 0x7FFE)}

    site = models.ForeignKey("fabric.Site", on_delete=models.PROTECT, related_name="number_pools")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    name = models.CharField(max_length=64)
    values = IntegerRangeField(help_text="half-open range [first, last + 1)")

    class Meta:
        ordering = ["site__name", "kind", "values"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="pool_name_unique_in_site"),
            ExclusionConstraint(
                name="pool_no_overlap_per_site_and_kind",
                expressions=[
                    ("site", RangeOperators.EQUAL),
                    ("kind", RangeOperators.EQUAL),
                    ("values", RangeOperators.OVERLAPS),
                ],
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.name} {self.kind} {self.values.lower}-{self.values.upper - 1}"


class NumberAllocation(models.Model):
    pool = models.ForeignKey(NumberPool, on_delete=models.PROTECT, related_name="allocations")
    # Denormalised from the pool so the database can forbid a value twice per site and kind.
    site = models.ForeignKey("fabric.Site", on_delete=models.PROTECT, related_name="+")
    kind = models.CharField(max_length=8, choices=NumberPool.Kind.choices)
    value = models.PositiveIntegerField()
    organization = models.ForeignKey(
        "portal.Organization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="number_allocations",
    )
    purpose = models.CharField(max_length=120, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["site", "kind", "value"]
        constraints = [
            models.UniqueConstraint(
                fields=["site", "kind", "value"], name="number_unique_per_site_and_kind"
            ),
            models.CheckConstraint(condition=Q(value__gte=1), name="number_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.value}"
