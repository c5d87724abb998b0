from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from billing.models import CreditGrant
from catalog.models import Order
from catalog.services.products import product_upsert
from courses.models import Course, Enrollment
from tests.portal.factories import member, organization_of


def university(credit: str = "1000"):
    """An owner of a university organization with prepaid credit."""
    admin = member(verified=True)
    CreditGrant.objects.create(organization=organization_of(admin), amount=Decimal(credit))
    return admin


def course_of(admin, **values) -> Course:
    today = timezone.localdate()
    defaults = {
        "title": "Deep Learning 101", "starts_on": today - timedelta(days=1),
        "ends_on": today + timedelta(days=60), "profiles": ["h100-1g"],
        "gpu_hours_per_student": Decimal("10"), "budget": Decimal("500"), "idle_minutes": 30,
    }  # fmt: skip
    return Course.objects.create(organization=organization_of(admin), **{**defaults, **values})


def student_in(course, role=Enrollment.Role.STUDENT):
    user = member(verified=False, organization=None)
    user.memberships.all().delete()  # students belong to no organization
    return user, Enrollment.objects.create(
        course=course, email=user.email, role=role, user=user, joined_at=timezone.now()
    )


def past_usage(course, user, hours: float, profile="h100-1g") -> Order:
    """A notebook the student ran earlier for `hours` (ended)."""
    product = product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    end = timezone.now() - timedelta(minutes=5)
    return Order.objects.create(
        organization=course.organization, created_by=user, product=product,
        offering="notebook", spec={"profile": profile, "course": course.pk, "gpu_model": "x",
        "shape": "slice", "slice_profile": "1g"}, state="terminated", hourly_quote=Decimal("0.36"),
        ready_at=end - timedelta(hours=hours), ended_at=end, cleaned_up_at=end,
    )  # fmt: skip
