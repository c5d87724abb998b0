from django.db import models


class Bmc(models.Model):
    """How to reach a node's baseboard management controller. The password is stored encrypted
    with a key from the environment (fabric.secrets); it is never shown or logged."""

    class Driver(models.TextChoices):
        REDFISH = "redfish", "Redfish"

    node = models.OneToOneField("fabric.Node", on_delete=models.CASCADE, related_name="bmc")
    driver = models.CharField(max_length=16, choices=Driver.choices, default=Driver.REDFISH)
    url = models.URLField(max_length=200, help_text="the Redfish service, e.g. https://10.100.0.7")
    system_id = models.CharField(
        max_length=200, help_text="the ComputerSystem's path, e.g. /redfish/v1/Systems/1"
    )
    username = models.CharField(max_length=64)
    password_encrypted = models.TextField()
    verify_tls = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["node__name"]
        verbose_name = "BMC"

    def __str__(self) -> str:
        return f"BMC of {self.node_id}"
