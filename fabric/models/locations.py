from django.db import models


class Site(models.Model):
    """A data center."""

    name = models.CharField(max_length=64, unique=True)
    region = models.CharField(max_length=64, blank=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Pod(models.Model):
    """A scalable unit: the racks under one set of leaf switches."""

    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="pods")
    name = models.CharField(max_length=64)

    class Meta:
        ordering = ["site__name", "name"]
        constraints = [models.UniqueConstraint(fields=["site", "name"], name="pod_unique_in_site")]

    def __str__(self) -> str:
        return f"{self.site.name}/{self.name}"


class Rack(models.Model):
    site = models.ForeignKey(Site, on_delete=models.PROTECT, related_name="racks")
    pod = models.ForeignKey(
        Pod, on_delete=models.PROTECT, null=True, blank=True, related_name="racks"
    )
    name = models.CharField(max_length=64)
    u_height = models.PositiveSmallIntegerField(default=42)

    class Meta:
        ordering = ["site__name", "name"]
        constraints = [
            models.UniqueConstraint(fields=["site", "name"], name="rack_unique_in_site"),
            models.CheckConstraint(
                condition=models.Q(u_height__gte=1, u_height__lte=60), name="rack_height_sane"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.site.name}/{self.name}"
