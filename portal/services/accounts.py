"""Users: created with a personal organization, so a new customer can act at once."""

from allauth.account.models import EmailAddress
from django.db import transaction

from portal.models import User
from portal.services.organizations import organization_create


def personal_organization_name(user: User) -> str:
    return f"{user.email.split('@')[0]}'s organization"


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str,
    password: str,
    organization_name: str | None = None,
    is_staff: bool = False,
    is_superuser: bool = False,
    email_verified: bool = False,
) -> User:
    """A user and, unless they are an operator, an organization they own. `email_verified` is
    for accounts an operator vouches for (the demo); sign-ups verify by the emailed link."""
    user = User.objects.create_user(
        username=username,
        email=email,
        password=password,
        is_staff=is_staff,
        is_superuser=is_superuser,
    )
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=email_verified)
    if organization_name:
        organization_create(name=organization_name, owner=user)
    return user
