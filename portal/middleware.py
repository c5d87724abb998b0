from portal import selectors

SESSION_KEY = "organization_id"


class CurrentOrganizationMiddleware:
    """Sets request.membership: the signed-in user's membership in the organization they act
    for (None when anonymous or in no organization). API tokens replace it with their own."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.membership = None
        if request.user.is_authenticated:
            request.membership = selectors.membership_current(
                user=request.user, organization_id=request.session.get(SESSION_KEY)
            )
        return self.get_response(request)
