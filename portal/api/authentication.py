from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from portal.models import ApiToken
from portal.services.tokens import api_token_authenticate


class BearerTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer sfk_…`: the request acts as the token creator's membership in the
    token's organization, limited by the token's scope.

    The scope is enforced here, where every token use passes, rather than in each view's
    permission classes: a read token never writes, whoever made it (staff included) and
    whatever permissions a view declares."""

    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].decode().lower() != self.keyword.lower():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Authorization: Bearer <token> expected.")
        found = api_token_authenticate(header[1].decode(errors="replace"))
        if found is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        token, membership = found
        writes = request.method not in permissions.SAFE_METHODS
        if writes and token.scope != ApiToken.Scope.READ_WRITE:
            raise exceptions.PermissionDenied("This token's scope is read-only: it cannot write.")
        request._request.membership = membership
        return membership.user, token

    def authenticate_header(self, request):
        return self.keyword


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "portal.api.authentication.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "An organization API token."}
