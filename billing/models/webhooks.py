from django.db import models


class WebhookEvent(models.Model):
    """A Stripe event, stored once by its id; processing reads Stripe's current state, so
    replays, duplicates and out-of-order deliveries change nothing twice."""

    stripe_event_id = models.CharField(max_length=255, unique=True)
    type = models.CharField(max_length=100)
    payload = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.stripe_event_id}"
