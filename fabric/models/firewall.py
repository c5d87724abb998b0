from django.db import models
from django.db.models import Q

from fabric.models.fields import CidrField


class FirewallAction(models.TextChoices):
    ALLOW = "allow", "Allow"
    DENY = "deny", "Deny"


class FirewallPolicy(models.Model):
    name = models.CharField(max_length=64)
    organization = models.ForeignKey(
        "portal.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="firewall_policies",
    )
    description = models.CharField(max_length=200, blank=True)
    default_action = models.CharField(
        max_length=8, choices=FirewallAction.choices, default=FirewallAction.DENY
    )

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "firewall policies"
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "name"],
                name="policy_name_unique_per_org",
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return self.name


class FirewallRule(models.Model):
    Action = FirewallAction

    class Direction(models.TextChoices):
        INGRESS = "ingress", "Ingress"
        EGRESS = "egress", "Egress"

    class Protocol(models.TextChoices):
        ANY = "any", "Any"
        TCP = "tcp", "TCP"
        UDP = "udp", "UDP"
        ICMP = "icmp", "ICMP"

    policy = models.ForeignKey(FirewallPolicy, on_delete=models.CASCADE, related_name="rules")
    position = models.PositiveSmallIntegerField()
    action = models.CharField(max_length=8, choices=Action.choices)
    direction = models.CharField(max_length=8, choices=Direction.choices)
    protocol = models.CharField(max_length=8, choices=Protocol.choices, default=Protocol.ANY)
    source = CidrField(default="0.0.0.0/0")
    destination = CidrField(default="0.0.0.0/0")
    port_min = models.PositiveIntegerField(null=True, blank=True)
    port_max = models.PositiveIntegerField(null=True, blank=True)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["policy", "position"]
        constraints = [
            models.UniqueConstraint(fields=["policy", "position"], name="rule_position_unique"),
            models.CheckConstraint(
                condition=Q(port_min__isnull=True, port_max__isnull=True)
                | Q(
                    protocol__in=["tcp", "udp"],
                    port_min__gte=1,
                    port_max__lte=65535,
                    port_min__lte=models.F("port_max"),
                ),
                name="rule_ports_valid_for_tcp_udp_only",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.policy.name}#{self.position} {self.action} {self.protocol}"
