from django.db import models


class NodeReport(models.Model):
    """What a node's agent last said about its hardware (the newest few are kept)."""

    node = models.ForeignKey("fabric.Node", on_delete=models.CASCADE, related_name="reports")
    received_at = models.DateTimeField(auto_now_add=True)
    nvml_available = models.BooleanField()
    payload = models.JSONField()

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.node_id} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class Drift(models.Model):
    """A difference between the inventory and what the hardware reports."""

    class Kind(models.TextChoices):
        GPU_MISSING = "gpu_missing", "GPU missing"
        GPU_UNKNOWN = "gpu_unknown", "Unknown GPU"
        GPU_SERIAL_MISMATCH = "gpu_serial_mismatch", "GPU serial mismatch"
        NIC_MISSING = "nic_missing", "NIC missing"
        MAC_UNKNOWN = "mac_unknown", "Unknown MAC"
        GUID_MISMATCH = "guid_mismatch", "InfiniBand GUID mismatch"
        BMC_SERIAL_MISMATCH = "bmc_serial_mismatch", "BMC serial mismatch"

    node = models.ForeignKey("fabric.Node", on_delete=models.CASCADE, related_name="drifts")
    kind = models.CharField(max_length=24, choices=Kind.choices)
    subject = models.CharField(max_length=120, help_text="the GPU UUID, MAC or name concerned")
    expected = models.CharField(max_length=200, blank=True)
    observed = models.CharField(max_length=200, blank=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-last_seen"]
        constraints = [
            models.UniqueConstraint(
                fields=["node", "kind", "subject"],
                condition=models.Q(resolved_at=None),
                name="drift_one_open_per_subject",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.node_id}: {self.get_kind_display()} {self.subject}"
