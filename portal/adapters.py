from allauth.account.adapter import DefaultAccountAdapter
from django.db import transaction

from portal.services.accounts import personal_organization_name
from portal.services.audit import Actor
from portal.services.organizations import organization_create


class AccountAdapter(DefaultAccountAdapter):
    """Every account signed up in the browser starts with a personal organization it owns."""

    def save_user(self, request, user, form, commit=True):
        with transaction.atomic():
            user = super().save_user(request, user, form, commit=commit)
            if commit:
                organization_create(
                    name=personal_organization_name(user),
                    owner=user,
                    actor=Actor.from_request(request),
                )
        return user
