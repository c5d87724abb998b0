from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """Who did what, when, and from where. Written by services, read by organization owners."""

    class Action(models.TextChoices):
        SIGNED_IN = "signed_in", "Signed in"
        SIGN_IN_FAILED = "sign_in_failed", "Sign-in failed"
        ORGANIZATION_CREATED = "organization_created", "Organization created"
        MEMBER_INVITED = "member_invited", "Member invited"
        INVITATION_ACCEPTED = "invitation_accepted", "Invitation accepted"
        INVITATION_DECLINED = "invitation_declined", "Invitation declined"
        INVITATION_REVOKED = "invitation_revoked", "Invitation revoked"
        ROLE_CHANGED = "role_changed", "Role changed"
        MEMBER_REMOVED = "member_removed", "Member removed"
        TOKEN_CREATED = "token_created", "API token created"
        TOKEN_REVOKED = "token_revoked", "API token revoked"
        # Dotted values: rows written before these were members keep their meaning.
        INFERENCE_KEY_CREATED = "inference_key.create", "Inference key created"
        INFERENCE_KEY_REVOKED = "inference_key.revoke", "Inference key revoked"
        SSH_KEY_ADDED = "ssh_key_added", "SSH key added"
        SSH_KEY_REMOVED = "ssh_key_removed", "SSH key removed"
        CARD_ADDED = "card_added", "Card added"
        CARD_REMOVED = "card_removed", "Card removed"
        CARD_DECLINED = "card_declined", "Card declined"
        CREDIT_GRANTED = "credit_granted", "Credit granted"
        BUDGET_ALERT = "budget_alert", "Budget alert"

    class Via(models.TextChoices):
        WEB = "web", "Web"
        API = "api", "API"
        TASK = "task", "Task"
        ADMIN = "admin", "Operator console"

    organization = models.ForeignKey(
        "portal.Organization",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="audit_events",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    action = models.CharField(max_length=32, choices=Action.choices)
    target = models.CharField(max_length=200, blank=True)
    detail = models.JSONField(default=dict, blank=True)
    via = models.CharField(max_length=8, choices=Via.choices, default=Via.WEB)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_action_display()} by {self.actor} at {self.created_at:%Y-%m-%d %H:%M}"
