from django.db import models
from django.db.models import Q

from fabric.models.fields import CidrField, InetField


class TenantNetwork(models.Model):
    """A tenant's network (VPC) at a site: a VRF with an L3VNI, segments, an InfiniBand
    partition, a storage leak and an access prefix. Device names come from ids, never from the
    tenant's text (`label`)."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        DELETED = "deleted", "Deleted"

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="networks"
    )
    site = models.ForeignKey("fabric.Site", on_delete=models.PROTECT, related_name="networks")
    label = models.CharField(
        max_length=80, help_text="the tenant's name for it; never sent to a device"
    )
    # Numbers from the site's pools; they return to the pools (null here) when it is deleted.
    l3vni = models.OneToOneField(
        "fabric.NumberAllocation", on_delete=models.SET_NULL, null=True, related_name="l3_network"
    )
    pkey = models.OneToOneField(
        "fabric.NumberAllocation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="ib_network",
    )
    access_prefix = CidrField(null=True, blank=True)
    bastion_host_key = models.CharField(
        max_length=200, blank=True, help_text="its bastion's public host key, as its runner said"
    )
    access_port = models.ForeignKey(
        "fabric.SwitchPort",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="the services host's trunk port that carries the network to its jump host",
    )
    storage = models.BooleanField(
        default=True, help_text="route leak to the shared storage network"
    )
    firewall_policy = models.ForeignKey(
        "fabric.FirewallPolicy", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    state = models.CharField(max_length=16, choices=State.choices, default=State.ACTIVE)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.device_name

    @property
    def device_name(self) -> str:
        return f"t{self.organization_id}n{self.pk}"

    @property
    def vrf(self) -> str:
        return f"T{self.organization_id}N{self.pk}"


class NetworkSegment(models.Model):
    network = models.ForeignKey(TenantNetwork, on_delete=models.CASCADE, related_name="segments")
    vlan = models.OneToOneField(
        "fabric.NumberAllocation", on_delete=models.SET_NULL, null=True, related_name="vlan_segment"
    )
    l2vni = models.OneToOneField(
        "fabric.NumberAllocation", on_delete=models.SET_NULL, null=True, related_name="vni_segment"
    )
    prefix = CidrField()
    gateway = InetField()

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.device_name

    @property
    def device_name(self) -> str:
        return f"seg{self.pk}"


class NetworkAttachment(models.Model):
    """A node's NIC on a segment, through the switch port its cable lands on."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        ATTACHED = "attached", "Attached"
        DETACHED = "detached", "Detached"
        FAILED = "failed", "Failed"

    network = models.ForeignKey(TenantNetwork, on_delete=models.CASCADE, related_name="attachments")
    segment = models.ForeignKey(
        NetworkSegment, on_delete=models.PROTECT, related_name="attachments"
    )
    interface = models.ForeignKey(
        "fabric.NetworkInterface", on_delete=models.PROTECT, related_name="attachments"
    )
    port = models.ForeignKey(
        "fabric.SwitchPort", on_delete=models.PROTECT, related_name="attachments"
    )
    allocation = models.ForeignKey(
        "fabric.Allocation",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="attachments",
    )
    address = InetField(null=True, blank=True, help_text="the NIC's address on the segment")
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["segment", "address"],
                condition=Q(state__in=["pending", "attached"]),
                name="attachment_one_live_per_address",
            ),
            models.UniqueConstraint(
                fields=["interface"],
                condition=Q(state__in=["pending", "attached"]),
                name="attachment_one_live_per_nic",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.interface} on {self.segment}"


class NetworkPush(models.Model):
    """One push of commands to one switch, and what the device answered: the network's
    history."""

    class Status(models.TextChoices):
        DRY_RUN = "dry_run", "Dry run"
        APPLIED = "applied", "Applied"
        FAILED = "failed", "Failed"
        ROLLED_BACK = "rolled_back", "Rolled back"

    network = models.ForeignKey(TenantNetwork, on_delete=models.CASCADE, related_name="pushes")
    switch = models.ForeignKey("fabric.Switch", on_delete=models.PROTECT, related_name="pushes")
    operation = models.CharField(max_length=16)
    commands = models.JSONField(default=list)
    output = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    error = models.CharField(max_length=300, blank=True)
    seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.operation} on {self.switch_id}: {self.status}"
