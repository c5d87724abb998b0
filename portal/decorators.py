from functools import wraps

from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect

from portal.permissions import Permission, require


def membership_required(permission: Permission):
    """A signed-in member of an organization whose role grants `permission` (403 otherwise);
    a user in no organization is sent to create one."""

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if request.membership is None:
                return redirect("portal:organization_create")
            require(request.membership, permission)
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
