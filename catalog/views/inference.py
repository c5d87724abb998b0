"""The inference pages: keys (create with limits, the secret shown once; revoke), usage by key
and model over time, a chat playground that calls the gateway, and code snippets."""

from decimal import Decimal

from django import forms
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from catalog.gateway.keys import inference_key_create, inference_key_revoke
from catalog.selectors.inference import (
    inference_key_get,
    inference_key_list,
    inference_price_list,
    token_usage,
)
from portal.decorators import membership_required
from portal.permissions import Permission, has_permission
from portal.services.audit import Actor
from portal.views.forms_util import apply_validation_error


class KeyForm(forms.Form):
    name = forms.CharField(max_length=80)
    allowed_models = forms.MultipleChoiceField(
        label="Models (none: all)",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=(),
    )
    rpm = forms.IntegerField(label="Requests per minute", min_value=1, required=False)
    tpm = forms.IntegerField(label="Tokens per minute", min_value=1, required=False)
    monthly_budget = forms.DecimalField(
        label="Monthly budget ($)", min_value=Decimal("0.01"), decimal_places=2, required=False
    )
    expires_at = forms.DateTimeField(
        label="Expires (UTC)",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["allowed_models"].choices = [(m, m) for m in settings.INFERENCE_MODELS]


@membership_required(Permission.VIEW)
def inference(request):
    membership = request.membership
    can_manage = has_permission(membership, Permission.MANAGE_TOKENS)
    form = KeyForm(request.POST or None)
    created = None
    if request.method == "POST" and can_manage and form.is_valid():
        try:
            key, secret = inference_key_create(
                by=membership, actor=Actor.from_request(request), **form.cleaned_data
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            created = {"key": key, "secret": secret}
            form = KeyForm()
    usage = token_usage(membership=membership)
    return render(
        request,
        "catalog/inference.html",
        {
            "keys": inference_key_list(membership=membership),
            "form": form,
            "created": created,
            "can_manage": can_manage,
            "usage": usage,
            "models": list(settings.INFERENCE_MODELS),
            "prices": inference_price_list(),
            "chat_models": [m for m, s in settings.INFERENCE_MODELS.items() if s["kind"] == "chat"],
            "base_url": request.build_absolute_uri("/v1"),
        },
    )


@membership_required(Permission.MANAGE_TOKENS)
@require_POST
def inference_key_revoke_view(request, key_id: int):
    key = inference_key_get(membership=request.membership, key_id=key_id)
    inference_key_revoke(by=request.membership, key=key, actor=Actor.from_request(request))
    messages.success(request, f"Key {key.name} revoked.")
    return redirect("inference:index")
