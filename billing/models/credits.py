from django.conf import settings
from django.db import models


class CreditGrant(models.Model):
    """Prepaid credit an operator gave an organization. Spending it comes with the usage ledger."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.CASCADE, related_name="credit_grants"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    currency = models.CharField(max_length=3, default="usd")
    expires_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)
    granted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="credit_grant_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency} for {self.organization}"
