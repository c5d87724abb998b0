from rest_framework import permissions

from portal.permissions import Permission, has_permission


class OrganizationPermission(permissions.BasePermission):
    """The caller acts through a membership whose role allows the view's permission: its
    `permission_read` for safe methods, `permission_write` otherwise. (A token's scope is
    checked when it authenticates: portal.api.authentication.)"""

    message = "Your role does not allow this."

    def has_permission(self, request, view):
        membership = getattr(request, "membership", None)
        if membership is None:
            return False
        read = request.method in permissions.SAFE_METHODS
        needed = view.permission_read if read else view.permission_write
        return has_permission(membership, Permission(needed))
