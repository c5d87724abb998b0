from django.db import models


class Budget(models.Model):
    """A monthly spending limit for an organization, with alerts at 50, 80 and 100 %."""

    organization = models.OneToOneField(
        "portal.Organization", on_delete=models.CASCADE, related_name="budget"
    )
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    stop_at_limit = models.BooleanField(default=True, help_text="stop running work at 100 %")
    month = models.DateField(null=True, blank=True, help_text="the month the alerts below are for")
    alerted_percent = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="budget_positive")
        ]

    def __str__(self) -> str:
        return f"{self.amount} a month for {self.organization_id}"
