"""Stripe's webhook endpoint: verify the signature and store the event; a task processes it."""

from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from billing import payments
from billing.services.webhooks import webhook_receive


@csrf_exempt
@require_POST
def stripe_webhook(request):
    try:
        webhook_receive(payload=request.body, signature=request.headers.get("Stripe-Signature", ""))
    except payments.WebhookSignatureError:
        return HttpResponseBadRequest("invalid signature")
    return HttpResponse(status=200)
