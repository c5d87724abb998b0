from django.db import models


class Invoice(models.Model):
    """Our record of what an organization owes for a period: the truth. Stripe only moves the
    money (a PaymentIntent per payment attempt, keyed by the invoice id and the attempt number:
    `payment_attempts` counts the attempts whose outcome is known)."""

    class State(models.TextChoices):
        OPEN = "open", "Open"
        PAID = "paid", "Paid"
        PAYMENT_FAILED = "payment_failed", "Payment failed"
        VOID = "void", "Void"

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.PROTECT, related_name="invoices"
    )
    period_start = models.DateTimeField()
    period_end = models.DateTimeField()
    state = models.CharField(max_length=16, choices=State.choices, default=State.OPEN)
    currency = models.CharField(max_length=3, default="usd")
    subtotal = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    credit_applied = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    total_due = models.DecimalField(max_digits=12, decimal_places=2, default=0)
    payment_intent_id = models.CharField(max_length=255, blank=True)
    payment_attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_payment_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-period_start", "-pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "period_start", "period_end"],
                name="invoice_once_per_period",
            ),
        ]

    def __str__(self) -> str:
        return f"INV-{self.pk:06d}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    meter = models.CharField(max_length=24)
    item = models.CharField(max_length=120)
    quantity = models.DecimalField(max_digits=20, decimal_places=6)
    unit = models.CharField(max_length=24)
    units = models.DecimalField(max_digits=20, decimal_places=6)
    unit_price = models.DecimalField(max_digits=12, decimal_places=6)
    amount = models.DecimalField(max_digits=12, decimal_places=2)

    class Meta:
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{self.units} {self.unit} of {self.item}: {self.amount}"


class CreditSpend(models.Model):
    """Credit taken from a grant to pay an invoice (grants are spent before the card)."""

    grant = models.ForeignKey(
        "billing.CreditGrant", on_delete=models.PROTECT, related_name="spends"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="credit_spends")
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="credit_spend_positive")
        ]

    def __str__(self) -> str:
        return f"{self.amount} from grant {self.grant_id} for {self.invoice}"


class Suspension(models.Model):
    """New orders are refused while an organization has an invoice it did not pay after every
    retry; paying it lifts the suspension."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.CASCADE, related_name="suspensions"
    )
    invoice = models.ForeignKey(Invoice, on_delete=models.PROTECT, related_name="suspensions")
    reason = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    lifted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(lifted_at=None),
                name="suspension_one_open_per_organization",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} suspended for {self.invoice}"
