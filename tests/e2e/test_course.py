"""A university course, in Chromium, with a real JupyterHub: the course admin creates a course
and invites three students; a student accepts the invitation (signing up without a card),
clicks Launch and lands in a live JupyterLab; the usage shows on the admin's page; a student
over quota is refused with the reason."""

import re

import pytest
from playwright.sync_api import expect

from catalog.services.products import product_upsert
from courses.models import Course
from tests.catalog.test_notebooks import h100_node
from tests.courses.factories import past_usage, student_in, university
from tests.e2e.mail import mail_to
from tests.portal.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]
STUDENTS = ["ada@uni.example", "bob@uni.example", "cyd@uni.example"]


def sign_in(page, url, email, password=PASSWORD):
    page.goto(url + "/accounts/login/")
    page.fill("#id_login", email)
    page.fill("#id_password", password)
    page.click("main form button[type=submit]")


def test_a_course_from_creation_to_a_student_in_jupyterlab_and_a_student_over_quota(
    jupyterhub, live_stack, browser
):
    h100_node()
    product_upsert(slug="notebook", name="Notebook", kind="notebook", summary="-")
    admin = university(credit="1000")
    url = live_stack.url

    staff = browser.new_context().new_page()
    staff.set_default_timeout(15_000)
    sign_in(staff, url, admin.email)
    staff.goto(url + "/courses/new/")
    staff.fill("#id_title", "GPU Programming")
    staff.fill("#id_starts_on", "2026-01-01")
    staff.fill("#id_ends_on", "2099-12-31")
    staff.check("input[name=profiles][value=h100-1g]")
    staff.fill("#id_gpu_hours_per_student", "2")
    staff.fill("#id_budget", "100")
    staff.click("#create-course")
    expect(staff).to_have_url(re.compile(r"/courses/\d+/$"))
    course = Course.objects.get(title="GPU Programming")
    staff.fill("#id_emails", "\n".join(STUDENTS))
    staff.click("#import-roster")
    expect(staff.locator(".alert-success")).to_contain_text("Invited 3 people")

    link = re.search(r"(http://\S+/courses/join/\S+/)", mail_to(live_stack.mail_dir, STUDENTS[0]))
    student = browser.new_context().new_page()
    student.set_default_timeout(15_000)
    student.goto(link[1])
    student.click("#signup")
    student.fill("#id_email", STUDENTS[0])
    student.fill("#id_password1", "Analytical-Engine-1843")
    student.fill("#id_password2", "Analytical-Engine-1843")
    student.click("main form button[type=submit]")
    student.click("#join")
    expect(student).to_have_url(f"{url}/courses/{course.pk}/")
    student.click("#launch")
    expect(student.locator("#jp-main-dock-panel")).to_be_visible(timeout=60_000)
    assert "/lab" in student.url

    staff.reload()
    row = staff.locator(f"tr[data-email='{STUDENTS[0]}']")
    expect(row.locator(".running")).to_have_text("Active")
    assert float(row.locator(".gpu-hours").inner_text()) > 0

    over, _ = student_in(course)
    past_usage(course, over, hours=15)  # 15 h on 1/7 of a GPU: 2.14 of 2 GPU-hours
    late = browser.new_context().new_page()
    sign_in(late, url, over.email)
    late.goto(f"{url}/courses/{course.pk}/")
    late.click("#launch")
    expect(late.locator(".alert-danger")).to_contain_text(
        "Your GPU-hour quota for GPU Programming is used up (2.14 of 2.00 h)"
    )

    staff.click("#stop-all")
    expect(staff.locator(".alert-info")).to_contain_text("Stopping 1 notebook(s)")
