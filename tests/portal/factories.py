import factory
from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password

from portal.models import Job, Membership, Organization, User

PASSWORD = "correct-horse-battery"
# Hashing once keeps factories fast; Argon2 is deliberately slow.
PASSWORD_HASH = make_password(PASSWORD)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = PASSWORD_HASH

    @factory.post_generation
    def verified(user, create, extracted, **kwargs):
        """verified=True gives the user a verified primary address, as after the email link."""
        if create and extracted:
            EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)


class OrganizationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organization

    name = factory.Sequence(lambda n: f"Org {n}")
    slug = factory.Sequence(lambda n: f"org-{n}")


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    user = factory.SubFactory(UserFactory)
    organization = factory.SubFactory(OrganizationFactory)
    role = Membership.Role.OWNER


class JobFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Job

    organization = factory.SubFactory(OrganizationFactory)
    kind = Job.Kind.SELF_CHECK


def member(role: str = Membership.Role.OWNER, organization=None, verified: bool = False) -> User:
    """A user with `role` in `organization` (a fresh one by default)."""
    user = UserFactory(verified=verified)
    MembershipFactory(user=user, role=role, organization=organization or OrganizationFactory())
    return user


def organization_of(user: User) -> Organization:
    return user.memberships.order_by("pk").first().organization
