from portal import selectors
from portal.permissions import ROLE_PERMISSIONS


def tenancy(request):
    """The organization switcher and the current role's permissions, for the base layout."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    membership = request.membership
    if membership is None:
        return {"memberships": []}
    return {
        "current_membership": membership,
        "memberships": selectors.membership_list_for_user(user=user),
        "perms_role": {p.value for p in ROLE_PERMISSIONS[membership.role]},
    }
