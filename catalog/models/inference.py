from django.conf import settings
from django.db import models
from django.db.models import Q


class InferenceKey(models.Model):
    """An organization's key to the token gateway (/v1/…). Only a SHA-256 digest of the secret
    is stored; the prefix names it in lists and logs. Limits: models it may call (empty: all),
    requests and tokens per minute, a monthly budget in dollars, an expiry."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.CASCADE, related_name="inference_keys"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    name = models.CharField(max_length=80)
    prefix = models.CharField(max_length=16, unique=True)
    digest = models.CharField(max_length=64, unique=True)
    allowed_models = models.JSONField(default=list, blank=True, help_text="empty: every model")
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="requests per minute")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="tokens per minute")
    monthly_budget = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(monthly_budget__isnull=True) | Q(monthly_budget__gt=0),
                name="inference_key_budget_positive",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
