from rest_framework import permissions

from portal.models import ApiToken
from portal.permissions import Permission, has_permission


class OrganizationPermission(permissions.BasePermission):
    """The caller acts through a membership whose role allows the view's permission: its
    `permission_read` for safe methods, `permission_write` otherwise. Read-only tokens never
    write."""

    message = "Your role or token scope does not allow this."

    def has_permission(self, request, view):
        membership = getattr(request, "membership", None)
        if membership is None:
            return False
        read = request.method in permissions.SAFE_METHODS
        token = request.auth if isinstance(request.auth, ApiToken) else None
        if not read and token is not None and token.scope != ApiToken.Scope.READ_WRITE:
            return False
        needed = view.permission_read if read else view.permission_write
        return has_permission(membership, Permission(needed))
