from django.db import models
from django.db.models import Q


class UsageEvent(models.Model):
    """One metered quantity, written once: the idempotency key, chosen by the source (for
    example `allocation:<id>:<interval start>`), is unique, so replays count once. Corrections
    are new events that point at the one they correct; nothing is edited or deleted."""

    class Meter(models.TextChoices):
        GPU_SECONDS = "gpu_seconds", "GPU-seconds"
        INPUT_TOKENS = "input_tokens", "Input tokens"
        OUTPUT_TOKENS = "output_tokens", "Output tokens"
        NOTEBOOK_SECONDS = "notebook_seconds", "Notebook-seconds"

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="usage_events"
    )
    idempotency_key = models.CharField(max_length=200, unique=True)
    meter = models.CharField(max_length=24, choices=Meter.choices)
    item = models.CharField(
        max_length=120, help_text="what was used: GPU model and shape, model, profile"
    )
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField()
    source = models.CharField(max_length=120, help_text="what produced it, e.g. allocation:42")
    corrects = models.ForeignKey(
        "self", on_delete=models.PROTECT, null=True, blank=True, related_name="corrections"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["recorded_at", "pk"]
        indexes = [models.Index(fields=["organization", "started_at"])]
        constraints = [
            models.CheckConstraint(
                condition=Q(ended_at__gte=models.F("started_at")), name="usage_period_ordered"
            ),
            models.CheckConstraint(
                condition=Q(quantity__gte=0) | Q(corrects__isnull=False),
                name="usage_negative_only_as_correction",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.meter} of {self.item}"


class Rate(models.Model):
    """The price of one unit of a meter for an item (a GPU-hour of an H100 node, a million
    input tokens of a model, a notebook-hour of a profile)."""

    meter = models.CharField(max_length=24, choices=UsageEvent.Meter.choices)
    item = models.CharField(max_length=120, help_text="exact item, or * for any other")
    unit = models.CharField(max_length=24, help_text="hour, million, ...")
    unit_quantity = models.DecimalField(
        max_digits=20, decimal_places=6, help_text="meter quantity in one unit (3600 for an hour)"
    )
    price = models.DecimalField(max_digits=12, decimal_places=6)
    currency = models.CharField(max_length=3, default="usd")

    class Meta:
        ordering = ["meter", "item"]
        constraints = [models.UniqueConstraint(fields=["meter", "item"], name="rate_unique")]

    def __str__(self) -> str:
        return f"{self.price} {self.currency} per {self.unit} of {self.item} ({self.meter})"
