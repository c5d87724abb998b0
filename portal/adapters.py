from allauth.account.adapter import DefaultAccountAdapter
from allauth.core import context as allauth_context
from django.contrib.sites.shortcuts import get_current_site
from django.db import transaction

from portal.services.accounts import personal_organization_name
from portal.services.audit import Actor
from portal.services.mail import mail_queue
from portal.services.organizations import organization_create


class AccountAdapter(DefaultAccountAdapter):
    """Every account signed up in the browser starts with a personal organization it owns;
    account mail (verification, password reset, notices) leaves from a Celery worker."""

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

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # Rendered here, where the request and its context are; sent by the worker, so a
        # failing mail server neither answers the visitor 500 nor loses the message.
        request = allauth_context.request
        mail_queue(
            message=self.render_mail(
                template_prefix,
                email,
                {"request": request, "email": email, "current_site": get_current_site(request)}
                | context,
            )
        )
