"""The platform self-check is an operator's tool: it lives in the operator console, not on the
customer's dashboard."""

import pytest

from portal.models import Job
from tests.portal.factories import JobFactory, UserFactory, member, organization_of

pytestmark = pytest.mark.django_db


def _operator():
    user = member()
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    return user


def test_given_a_customer_then_the_dashboard_has_no_self_check_and_the_console_is_closed(client):
    customer = member()
    JobFactory(organization=organization_of(customer))
    client.force_login(customer)
    dashboard = client.get("/dashboard/").content.decode()
    assert "run-self-check" not in dashboard and "Background jobs" not in dashboard
    assert client.get("/operator/jobs/").status_code == 302  # operator pages need staff


def test_given_an_operator_when_running_the_self_check_from_the_console_then_a_job_starts(
    client,
):
    operator = _operator()
    client.force_login(operator)
    page = client.get("/operator/jobs/").content.decode()
    assert 'id="run-self-check"' in page and "No jobs yet." in page
    response = client.post("/jobs/")
    job = Job.objects.get(organization=organization_of(operator))
    assert response["Location"] == f"/jobs/{job.pk}/"
    assert f'href="/jobs/{job.pk}/"' in client.get("/operator/jobs/").content.decode()


def test_given_an_operator_in_no_organization_then_the_console_says_why_nothing_can_run(client):
    client.force_login(UserFactory(is_staff=True))
    page = client.get("/operator/jobs/").content.decode()
    assert "run-self-check" not in page
    assert 'id="self-check-needs-organization"' in page


def test_given_many_jobs_then_the_console_lists_them_with_a_fixed_number_of_queries(
    client, django_assert_max_num_queries
):
    operator = _operator()
    JobFactory.create_batch(20, organization=organization_of(operator))
    client.force_login(operator)
    # session, user, membership, the organization switcher, the jobs
    with django_assert_max_num_queries(6):
        assert client.get("/operator/jobs/").status_code == 200
