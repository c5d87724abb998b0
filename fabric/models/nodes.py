from django.contrib.postgres.constraints import ExclusionConstraint
from django.contrib.postgres.fields import RangeOperators
from django.db import models
from django.db.models import F, Func, Q

from fabric.models.fields import InetField
from portal.models import TransitionEvent

MAC_REGEX = r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$"
GUID_REGEX = r"^([0-9a-f]{4}:){3}[0-9a-f]{4}$"


class Int4Range(Func):
    function = "int4range"
    output_field = models.Field()


def rack_span(position: str, units: str) -> Int4Range:
    """The rack units [position, position + units) an object occupies."""
    return Int4Range(F(position), F(position) + F(units))


class NodeState(models.TextChoices):
    ENROLLED = "enrolled", "Enrolled"
    BURN_IN = "burn_in", "Burn-in"
    AVAILABLE = "available", "Available"
    ALLOCATED = "allocated", "Allocated"
    SPARE = "spare", "Spare"
    SUSPECT = "suspect", "Suspect"
    QUARANTINED = "quarantined", "Quarantined"
    REPAIR = "repair", "Repair"
    CORDONED = "cordoned", "Cordoned"
    MAINTENANCE = "maintenance", "Maintenance"
    DRAINING = "draining", "Draining"
    CLEANING = "cleaning", "Cleaning"


class Node(models.Model):
    """A server. Its name is its hostname; its serial is the vendor's."""

    class Role(models.TextChoices):
        SERVER = "server", "GPU server for tenants"
        SERVICES = "services", "Platform services host (jump hosts)"

    name = models.CharField(max_length=64, unique=True)
    serial = models.CharField(max_length=64, unique=True)
    vendor = models.CharField(max_length=64)
    model = models.CharField(max_length=64)
    node_type = models.CharField(max_length=64, help_text="e.g. hgx-h100-8")
    role = models.CharField(
        max_length=16,
        choices=Role.choices,
        default=Role.SERVER,
        help_text="a services host carries every tenant network's jump host on a trunk port",
    )
    gpu_model = models.CharField(max_length=64, blank=True)
    cpu_model = models.CharField(max_length=64, blank=True)
    cpu_cores = models.PositiveSmallIntegerField(default=0)
    memory_gb = models.PositiveIntegerField(default=0)
    site = models.ForeignKey("fabric.Site", on_delete=models.PROTECT, related_name="nodes")
    rack = models.ForeignKey(
        "fabric.Rack", on_delete=models.PROTECT, null=True, blank=True, related_name="nodes"
    )
    rack_position = models.PositiveSmallIntegerField(null=True, blank=True)
    rack_units = models.PositiveSmallIntegerField(default=1)
    bmc_address = InetField(
        null=True, blank=True, unique=True, help_text="the BMC on the out-of-band network"
    )
    state = models.CharField(max_length=16, choices=NodeState.choices, default=NodeState.ENROLLED)
    organization = models.ForeignKey(
        "portal.Organization",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="nodes",
        help_text="the tenant the node is allocated to",
    )
    agent_token_digest = models.CharField(max_length=64, blank=True)
    last_report_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["site", "state"]), models.Index(fields=["gpu_model"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(rack__isnull=True, rack_position__isnull=True)
                | Q(rack__isnull=False, rack_position__gte=1),
                name="node_rack_position_with_rack",
            ),
            models.CheckConstraint(
                condition=Q(rack_units__gte=1, rack_units__lte=10), name="node_units_sane"
            ),
            ExclusionConstraint(
                name="node_rack_units_do_not_overlap",
                expressions=[
                    ("rack", RangeOperators.EQUAL),
                    (rack_span("rack_position", "rack_units"), RangeOperators.OVERLAPS),
                ],
                condition=Q(rack__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return self.name


class NodeEvent(TransitionEvent):
    """One state transition of a node."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, choices=NodeState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=NodeState.choices)


class GPU(models.Model):
    class Health(models.TextChoices):
        HEALTHY = "healthy", "Healthy"
        DEGRADED = "degraded", "Degraded"
        FAILED = "failed", "Failed"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="gpus")
    index = models.PositiveSmallIntegerField()
    uuid = models.CharField(max_length=64, unique=True)
    serial = models.CharField(max_length=64, unique=True, null=True, blank=True)
    model = models.CharField(max_length=64)
    memory_mb = models.PositiveIntegerField()
    pci_bus_id = models.CharField(max_length=32)
    numa_node = models.PositiveSmallIntegerField(null=True, blank=True)
    nvlink_domain = models.CharField(max_length=64, blank=True)
    mig_capable = models.BooleanField(default=False)
    health = models.CharField(max_length=16, choices=Health.choices, default=Health.HEALTHY)

    class Meta:
        ordering = ["node__name", "index"]
        constraints = [
            models.UniqueConstraint(fields=["node", "index"], name="gpu_index_unique_in_node"),
            models.UniqueConstraint(fields=["node", "pci_bus_id"], name="gpu_pci_unique_in_node"),
            models.CheckConstraint(
                condition=Q(uuid__regex=r"^GPU-[0-9a-f-]{36}$"), name="gpu_uuid_format"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node.name} GPU{self.index}"


class NetworkInterface(models.Model):
    class Kind(models.TextChoices):
        ETHERNET = "ethernet", "Ethernet"
        INFINIBAND = "infiniband", "InfiniBand"

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="interfaces")
    name = models.CharField(max_length=32)
    mac = models.CharField(max_length=17, unique=True)
    speed_gbps = models.PositiveIntegerField(default=0)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.ETHERNET)
    ib_guid = models.CharField(max_length=19, unique=True, null=True, blank=True)
    rail = models.PositiveSmallIntegerField(null=True, blank=True)
    nearest_gpu = models.ForeignKey(
        GPU, on_delete=models.SET_NULL, null=True, blank=True, related_name="interfaces"
    )

    class Meta:
        ordering = ["node__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["node", "name"], name="nic_name_unique_in_node"),
            models.CheckConstraint(condition=Q(mac__regex=MAC_REGEX), name="nic_mac_format"),
            models.CheckConstraint(
                condition=Q(ib_guid__isnull=True) | Q(ib_guid__regex=GUID_REGEX),
                name="nic_guid_format",
            ),
            models.CheckConstraint(
                condition=Q(kind="infiniband") | Q(ib_guid__isnull=True),
                name="nic_guid_only_on_infiniband",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node.name}:{self.name}"
