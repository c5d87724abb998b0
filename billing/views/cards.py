"""The billing overview (the card on file and prepaid credit) and the card pages. The card itself
goes from the browser straight to Stripe (Stripe.js); these pages only start and finish that."""

from django.conf import settings
from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from billing import payments, selectors
from billing.services import cards as card_services
from portal.decorators import membership_required
from portal.models import AuditEvent
from portal.permissions import Permission, has_permission
from portal.services.audit import Actor, audit_record


@membership_required(Permission.MANAGE_BILLING)
def overview(request):
    organization = request.membership.organization
    return render(
        request,
        "billing/overview.html",
        {
            "cards": selectors.card_list(organization=organization),
            "credit_balance": selectors.credit_balance(organization=organization),
            "grants": selectors.credit_grant_list(organization=organization)[:20],
        },
    )


@membership_required(Permission.MANAGE_BILLING)
def card_add(request):
    """The card form: Stripe.js collects the card straight into Stripe; we never see it."""
    try:
        client_secret = card_services.card_setup_start(membership=request.membership)
    except payments.PaymentUnavailable as error:
        messages.error(request, str(error))
        return redirect("billing:overview")
    return render(
        request,
        "billing/card_add.html",
        {
            "client_secret": client_secret,
            "publishable_key": settings.STRIPE_PUBLISHABLE_KEY,
            "stripe_js_url": settings.STRIPE_JS_URL,
        },
    )


@membership_required(Permission.MANAGE_BILLING)
@require_POST
def card_complete(request):
    """Stripe.js confirmed the card; check with Stripe and save it."""
    try:
        card = card_services.card_setup_complete(
            organization=request.membership.organization,
            setup_intent_id=request.POST.get("setup_intent", ""),
            actor=Actor.from_request(request),
        )
    except payments.PaymentError as error:
        messages.error(request, str(error))
        return redirect("billing:card_add")
    except payments.PaymentUnavailable as error:
        messages.error(request, f"{error} Your card was not saved.")
        return redirect("billing:overview")
    messages.success(request, f"Saved {card}; it is now your default card.")
    if has_permission(request.membership, Permission.VIEW):
        return redirect("portal:dashboard")
    return redirect("billing:overview")


@membership_required(Permission.MANAGE_BILLING)
@require_POST
def card_declined(request):
    """Stripe.js reports a decline or failed authentication: nothing was saved; log it."""
    audit_record(
        action=AuditEvent.Action.CARD_DECLINED,
        actor=Actor.from_request(request),
        organization=request.membership.organization,
        detail={"message": request.POST.get("message", "")[:200]},
    )
    return HttpResponse(status=204)


@membership_required(Permission.MANAGE_BILLING)
@require_POST
def card_remove(request, card_id: int):
    card = selectors.card_get(organization=request.membership.organization, card_id=card_id)
    try:
        card_services.card_remove(
            membership=request.membership, card=card, actor=Actor.from_request(request)
        )
    except (payments.PaymentError, payments.PaymentUnavailable) as error:
        messages.error(request, f"{error} The card was not removed.")
    else:
        messages.success(request, f"Removed {card}.")
    return redirect("billing:overview")
