"""What servers fetch on the provisioning network: iPXE's chain script, then each server's own
script, asked for by the MAC of the NIC it booted from. Anonymous like the metadata endpoint:
a server has no login; the service answers a server's script to that server's address only."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from fabric.services.cleaning import node_clean_report
from fabric.services.provisioning import provisioning_boot_script, provisioning_chain_script

IPXE = "text/plain; charset=utf-8"


def _client_address(request: HttpRequest) -> str:
    """REMOTE_ADDR, or the X-Forwarded-For entry added by the nearest of TRUSTED_PROXY_HOPS
    proxies (as the API's rate limits read it)."""
    hops = settings.TRUSTED_PROXY_HOPS
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    if hops and len(forwarded) >= hops and forwarded[-hops]:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "")


@require_GET
def ipxe_chain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(provisioning_chain_script(), content_type=IPXE)


@require_GET
def ipxe_script(request: HttpRequest, mac: str) -> HttpResponse:
    script = provisioning_boot_script(mac=mac, client_address=_client_address(request))
    if script is None:
        raise Http404("No such server on the provisioning network.")
    return HttpResponse(script, content_type=IPXE)


@csrf_exempt
@require_POST
def cleaned(request: HttpRequest, token: str) -> HttpResponse:
    """The cleaning job's report (form fields `status`: `cleaned` or what failed, `detail`)."""
    try:
        event = node_clean_report(
            token=token,
            status=request.POST.get("status", ""),
            detail=request.POST.get("detail", ""),
        )
    except signing.BadSignature:
        raise Http404("No such cleaning.") from None
    if event is None:
        return HttpResponse("no cleaning in progress\n", status=409, content_type=IPXE)
    return HttpResponse(f"{event.to_state}\n", content_type=IPXE)
