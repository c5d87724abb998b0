from django.conf import settings
from django.db import models
from django.db.models import Q

from portal.models import TransitionEvent


class OrderState(models.TextChoices):
    PLACED = "placed", "Placed"
    AUTHORIZED = "authorized", "Authorized"
    QUEUED = "queued", "Waiting for capacity"
    ALLOCATING = "allocating", "Allocating"
    NETWORKING = "networking", "Building the network"
    POWERING = "powering", "Powering on"
    LAUNCHING = "launching", "Launching"
    READY = "ready", "Ready"
    ACTIVE = "active", "Active"
    STOPPING = "stopping", "Stopping"
    TERMINATED = "terminated", "Terminated"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Order(models.Model):
    """A tenant's order of one offering, from the click to its end. Billing runs from
    `ready_at` to `ended_at` only: a failed launch is never charged."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="orders"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    product = models.ForeignKey("catalog.Product", on_delete=models.PROTECT, related_name="orders")
    offering = models.CharField(max_length=32, help_text="the plug-in that fulfils it")
    spec = models.JSONField(default=dict, help_text="what was ordered, validated by the offering")
    state = models.CharField(max_length=16, choices=OrderState.choices, default=OrderState.PLACED)
    hourly_quote = models.DecimalField(max_digits=12, decimal_places=2)
    message = models.CharField(max_length=300, blank=True, help_text="what the tenant reads")
    allocation = models.OneToOneField(
        "fabric.Allocation", on_delete=models.PROTECT, null=True, blank=True, related_name="order"
    )
    network = models.OneToOneField(
        "fabric.TenantNetwork",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="order",
    )
    ready_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    cleaned_up_at = models.DateTimeField(
        null=True, blank=True, help_text="when capacity, network and power were given back"
    )
    delayed_since = models.DateTimeField(
        null=True,
        blank=True,
        help_text="since when a slow or unreachable platform service holds the order up",
    )
    delay_reason = models.CharField(
        max_length=200, blank=True, help_text="which service, in the tenant's words"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "state"]), models.Index(fields=["state"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__isnull=True)
                | Q(ready_at__isnull=True)
                | Q(ended_at__gte=models.F("ready_at")),
                name="order_ends_after_ready",
            ),
        ]

    def __str__(self) -> str:
        return f"Order #{self.pk}"


class OrderEvent(TransitionEvent):
    """One transition of an order: the audit trail, the progress feed and billing's clock."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="events")
    from_state = models.CharField(max_length=16, choices=OrderState.choices, blank=True)
    to_state = models.CharField(max_length=16, choices=OrderState.choices)


class OrderStep(models.Model):
    """One step of the offering's recipe as the tenant sees it, with its own progress."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="steps")
    key = models.CharField(max_length=32)
    label = models.CharField(max_length=80)
    position = models.PositiveSmallIntegerField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.PENDING)
    progress = models.PositiveSmallIntegerField(default=0)
    detail = models.CharField(max_length=300, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "position"]
        constraints = [
            models.UniqueConstraint(fields=["order", "key"], name="order_step_unique"),
            models.CheckConstraint(condition=Q(progress__lte=100), name="order_step_progress"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}/{self.key}"


class OrderNode(models.Model):
    """A server handed to a bare-metal order: its power progress and its handover details."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="nodes")
    node = models.ForeignKey("fabric.Node", on_delete=models.PROTECT, related_name="+")
    hostname = models.CharField(max_length=64)
    address = models.GenericIPAddressField(null=True, blank=True)
    metadata_nonce = models.CharField(max_length=32, help_text="keys the per-node token")
    power_requested_at = models.DateTimeField(null=True, blank=True)
    powered_on_at = models.DateTimeField(null=True, blank=True)
    ready_at = models.DateTimeField(null=True, blank=True)
    powered_off_at = models.DateTimeField(null=True, blank=True)
    metadata_fetched_at = models.DateTimeField(null=True, blank=True)
    # What the server's cloud-init phoned home: its sshd host keys, type -> "type base64".
    host_keys = models.JSONField(default=dict, blank=True)
    phoned_home_at = models.DateTimeField(null=True, blank=True)
    # What the platform started on it for a managed product (a Ray cluster: the node's role,
    # the Ray and Python versions it runs), and when that answered.
    service = models.JSONField(default=dict, blank=True)
    service_started_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["order", "hostname"]
        constraints = [
            models.UniqueConstraint(fields=["order", "node"], name="order_node_unique"),
        ]

    def __str__(self) -> str:
        return self.hostname
