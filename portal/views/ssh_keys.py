"""The signed-in user's SSH public keys (handed to the machines they launch)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from portal import selectors
from portal.forms import SshKeyForm
from portal.services.audit import Actor
from portal.services.ssh_keys import ssh_key_add, ssh_key_remove
from portal.views.forms_util import apply_validation_error


@login_required
def ssh_key_list(request):
    form = SshKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            key = ssh_key_add(
                user=request.user,
                name=form.cleaned_data["name"],
                public_key=form.cleaned_data["public_key"],
                actor=Actor.from_request(request),
            )
        except ValidationError as error:
            apply_validation_error(form, error)
        else:
            messages.success(request, f"Added {key.name} ({key.fingerprint}).")
            return redirect("portal:ssh_keys")
    return render(
        request,
        "portal/ssh_keys.html",
        {"keys": selectors.ssh_key_list(user=request.user), "form": form},
    )


@login_required
@require_POST
def ssh_key_delete(request, key_id: int):
    key = selectors.ssh_key_get(user=request.user, key_id=key_id)
    ssh_key_remove(user=request.user, key=key, actor=Actor.from_request(request))
    messages.success(request, f"Removed {key.name}.")
    return redirect("portal:ssh_keys")
