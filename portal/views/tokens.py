"""API tokens of the current organization: the secret is shown once, right after creation."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from portal import selectors
from portal.decorators import membership_required
from portal.forms import ApiTokenForm
from portal.permissions import Permission
from portal.services.audit import Actor
from portal.services.tokens import api_token_create, api_token_revoke
from portal.views.forms_util import apply_validation_error


@membership_required(Permission.MANAGE_TOKENS)
def token_list(request):
    form = ApiTokenForm(request.POST or None)
    created = None
    if request.method == "POST" and form.is_valid():
        try:
            token, plain = api_token_create(
                by=request.membership,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                expires_at=form.cleaned_data["expires_at"],
                actor=Actor.from_request(request),
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            created = {"token": token, "plain": plain}
            form = ApiTokenForm()
    return render(
        request,
        "portal/tokens.html",
        {
            "tokens": selectors.api_token_list(membership=request.membership),
            "form": form,
            "created": created,
            "now": timezone.now(),
        },
    )


@membership_required(Permission.MANAGE_TOKENS)
@require_POST
def token_revoke(request, token_id: int):
    token = selectors.api_token_get(membership=request.membership, token_id=token_id)
    api_token_revoke(by=request.membership, token=token, actor=Actor.from_request(request))
    messages.success(request, f"Token {token.name} revoked.")
    return redirect("portal:tokens")
