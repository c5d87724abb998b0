"""The words other apps may use for fabric's capacity (NetBox keeps its choice sets the same
way, apart from the models): an allocation's state, shape and topology. Fabric's models are
built from them; catalog's forms and API offer them without reaching into fabric's models."""

from django.db import models


class AllocationState(models.TextChoices):
    REQUESTED = "requested", "Requested"
    QUEUED = "queued", "Queued"
    PLACED = "placed", "Placed"
    ACTIVE = "active", "Active"
    EXPIRING = "expiring", "Expiring"
    RECLAIMING = "reclaiming", "Reclaiming"
    RELEASED = "released", "Released"
    PREEMPTED = "preempted", "Preempted"
    SWAPPING = "swapping", "Swapping"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class AllocationShape(models.TextChoices):
    NODE = "node", "Whole nodes"
    GPU = "gpu", "GPUs"
    SLICE = "slice", "MIG slices"


class AllocationTopology(models.TextChoices):
    SAME_LEAF = "same-leaf", "Same leaf"
    SAME_RAIL_GROUP = "same-rail-group", "Same rail group"
    SAME_IB_ISLAND = "same-ib-island", "Same InfiniBand island"
    ANY = "any", "Anywhere"


class PowerState(models.TextChoices):
    """What a BMC says of a server's power (fabric.services.power.node_power_state)."""

    ON = "on", "On"
    OFF = "off", "Off"
