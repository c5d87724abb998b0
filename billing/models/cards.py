from django.db import models


class StripeCustomer(models.Model):
    """The Stripe Customer that pays for one organization."""

    organization = models.OneToOneField(
        "portal.Organization", on_delete=models.PROTECT, related_name="stripe_customer"
    )
    stripe_id = models.CharField(max_length=255, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.stripe_id


class Card(models.Model):
    """A card saved with Stripe for an organization. Only Stripe holds the number; we keep what
    the customer needs to recognise it."""

    organization = models.ForeignKey(
        "portal.Organization", on_delete=models.CASCADE, related_name="cards"
    )
    stripe_payment_method_id = models.CharField(max_length=255, unique=True)
    brand = models.CharField(max_length=32)
    last4 = models.CharField(max_length=4)
    exp_month = models.PositiveSmallIntegerField()
    exp_year = models.PositiveSmallIntegerField()
    is_default = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-is_default", "-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["organization"],
                condition=models.Q(is_default=True),
                name="card_one_default_per_organization",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.brand.capitalize()} •••• {self.last4}"
