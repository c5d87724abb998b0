"""The audit log: who did what, when and from where."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from portal.models import AuditEvent, Organization, User


@dataclass(frozen=True)
class Actor:
    """Who is acting and through which door; entry points build it, services record it."""

    user: User | None
    via: str = AuditEvent.Via.WEB
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request, via: str | None = None) -> Actor:
        user = getattr(request, "user", None)
        user = user if user is not None and user.is_authenticated else None
        if via is None:
            api = getattr(request, "path", "").startswith("/api/")
            via = AuditEvent.Via.API if api else AuditEvent.Via.WEB
        return cls(
            user=user,
            via=via,
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
        )

    @classmethod
    def system(cls, via: str = AuditEvent.Via.TASK) -> Actor:
        return cls(user=None, via=via)

    @property
    def label(self) -> str:
        return f"user:{self.user.pk}" if self.user else f"system:{self.via}"


def audit_record(
    *,
    action: str,
    actor: Actor,
    organization: Organization | None = None,
    target: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        organization=organization,
        actor=actor.user,
        action=action,
        target=target[:200],
        detail=detail or {},
        via=actor.via,
        ip_address=actor.ip,
        user_agent=actor.user_agent,
    )


def audit_sign_in(*, request, user: User, failed: bool = False) -> None:
    """A sign-in (or failed attempt) goes into the log of every organization of the user, so
    each one's owners see who entered when and from where."""
    seen = Actor.from_request(request) if request is not None else Actor.system(AuditEvent.Via.WEB)
    actor = Actor(user=user, via=seen.via, ip=seen.ip, user_agent=seen.user_agent)
    action = AuditEvent.Action.SIGN_IN_FAILED if failed else AuditEvent.Action.SIGNED_IN
    for membership in user.memberships.select_related("organization"):
        audit_record(
            action=action, actor=actor, organization=membership.organization, target=user.email
        )
