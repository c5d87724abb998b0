"""Django auth signals, turned into audit-log entries by a service."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from portal.services.audit import audit_sign_in


@receiver(user_logged_in)
def record_sign_in(sender, request, user, **kwargs):
    audit_sign_in(request=request, user=user)


@receiver(user_login_failed)
def record_failed_sign_in(sender, credentials, request=None, **kwargs):
    login = credentials.get("username") or credentials.get("email") or ""
    User = get_user_model()
    user = (
        User.objects.filter(email__iexact=login).first()
        or User.objects.filter(username=login).first()
    )
    if user is not None:
        audit_sign_in(request=request, user=user, failed=True)
