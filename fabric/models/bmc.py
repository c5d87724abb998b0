from django.db import models
from django.db.models import Q


class Bmc(models.Model):
    """How to reach a node's baseboard management controller. The password is either stored
    encrypted with a key from the environment (fabric.secrets) or named by a reference
    (`env:VARIABLE`, `file:/path`) read when the BMC is used; it is never shown or logged."""

    class Driver(models.TextChoices):
        REDFISH = "redfish", "Redfish"

    node = models.OneToOneField("fabric.Node", on_delete=models.CASCADE, related_name="bmc")
    driver = models.CharField(max_length=16, choices=Driver.choices, default=Driver.REDFISH)
    url = models.URLField(max_length=200, help_text="the Redfish service, e.g. https://10.100.0.7")
    system_id = models.CharField(
        max_length=200,
        blank=True,
        help_text="the ComputerSystem's path, e.g. /redfish/v1/Systems/1; empty: its only one",
    )
    username = models.CharField(max_length=64)
    password_encrypted = models.TextField(blank=True)
    password_ref = models.CharField(
        max_length=200,
        blank=True,
        help_text="env:VARIABLE or file:/path holding the password, read at use; never the secret",
    )
    verify_tls = models.BooleanField(default=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    verification = models.CharField(
        max_length=300, blank=True, help_text="what the last verification found"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["node__name"]
        verbose_name = "BMC"
        constraints = [
            models.CheckConstraint(
                condition=(~Q(password_encrypted="") & Q(password_ref=""))
                | (Q(password_encrypted="") & ~Q(password_ref="")),
                name="bmc_password_or_reference",
                violation_error_message="Give a password or a password reference: one of the two.",
            ),
        ]

    def __str__(self) -> str:
        return f"BMC of {self.node}"
