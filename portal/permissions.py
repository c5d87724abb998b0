"""Roles and what each may do: the one place role checks are decided."""

from enum import StrEnum

from django.core.exceptions import PermissionDenied

from portal.models import Membership


class Permission(StrEnum):
    VIEW = "view"  # see the organization's resources: jobs, orders, networks, usage
    ORDER = "order"  # launch, stop and change resources
    MANAGE_MEMBERS = "manage_members"  # invite, change roles, remove members
    MANAGE_TOKENS = "manage_tokens"  # create and revoke API tokens
    MANAGE_BILLING = "manage_billing"  # cards, credit balance, invoices
    READ_AUDIT = "read_audit"  # the audit log
    MANAGE_OWNERS = "manage_owners"  # grant or take the owner role


Role = Membership.Role

ROLE_PERMISSIONS: dict[str, frozenset[Permission]] = {
    Role.OWNER: frozenset(Permission),
    Role.ADMIN: frozenset(
        {
            Permission.VIEW,
            Permission.ORDER,
            Permission.MANAGE_MEMBERS,
            Permission.MANAGE_TOKENS,
            Permission.MANAGE_BILLING,
        }
    ),
    Role.MEMBER: frozenset({Permission.VIEW, Permission.ORDER}),
    Role.BILLING: frozenset({Permission.MANAGE_BILLING}),
}


def has_permission(membership: Membership | None, permission: Permission) -> bool:
    return membership is not None and permission in ROLE_PERMISSIONS[membership.role]


def require(membership: Membership | None, permission: Permission) -> None:
    if not has_permission(membership, permission):
        raise PermissionDenied(f"Your role cannot {permission.value.replace('_', ' ')}.")
