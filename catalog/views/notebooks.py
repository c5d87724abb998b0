"""What JupyterHub asks the portal: who a signed-in user is (OAuth2 userinfo) and whether a
server may start (the pre-spawn hook's admission call, authenticated with the shared token)."""

import hmac
import json

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST
from oauth2_provider.decorators import protected_resource

from catalog.notebooks.oauth import userinfo_for
from catalog.services.notebooks import notebook_admission


@require_GET
@protected_resource(scopes=["read"])
def userinfo(request):
    return JsonResponse(userinfo_for(request.resource_owner))


@csrf_exempt
@require_POST
def admission(request):
    expected = f"token {settings.JUPYTERHUB_API_TOKEN}"
    given = request.headers.get("Authorization", "")
    if not settings.JUPYTERHUB_API_TOKEN or not hmac.compare_digest(given, expected):
        return JsonResponse({"message": "Not the hub."}, status=401)
    try:
        body = json.loads(request.body)
        user, server = str(body["user"]), str(body["server"])
    except (ValueError, KeyError, TypeError):
        return JsonResponse({"message": "Expected JSON with user and server."}, status=400)
    decision = notebook_admission(hub_user=user, server=server)
    if not decision.allowed:
        return JsonResponse({"message": decision.message}, status=403)
    return JsonResponse({"allow": True, "environment": decision.environment})
