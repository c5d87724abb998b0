from django.db import models
from django.db.models import Q


class Cable(models.Model):
    """A cable between two ends. Each end is a NIC or a switch port, and the uniqueness of
    those columns across both ends' rows is what forbids cabling a port twice."""

    label = models.CharField(max_length=64, unique=True)
    kind = models.CharField(max_length=32, blank=True, help_text="e.g. dac, aoc, fiber")
    length_m = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)

    class Meta:
        ordering = ["label"]

    def __str__(self) -> str:
        return self.label


class CableEnd(models.Model):
    class Side(models.TextChoices):
        A = "a", "A"
        B = "b", "B"

    cable = models.ForeignKey(Cable, on_delete=models.CASCADE, related_name="ends")
    side = models.CharField(max_length=1, choices=Side.choices)
    interface = models.OneToOneField(
        "fabric.NetworkInterface",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cable_end",
    )
    port = models.OneToOneField(
        "fabric.SwitchPort",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="cable_end",
    )

    class Meta:
        ordering = ["cable__label", "side"]
        constraints = [
            models.UniqueConstraint(fields=["cable", "side"], name="cable_end_one_per_side"),
            models.CheckConstraint(
                condition=Q(interface__isnull=False, port__isnull=True)
                | Q(interface__isnull=True, port__isnull=False),
                name="cable_end_is_a_nic_or_a_port",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.cable.label}/{self.side}: {self.interface or self.port}"
