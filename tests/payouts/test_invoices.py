"""Self-billing invoices (issue 17, point 5): each approved payout gets a numbered PDF invoice
that the affiliate and managers download; the text is read back with pypdf, as an accountant's
tool would read it. The figures are the CPA a manager set (25.00 per FTD, 2.00 per install)."""

import io
import threading
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from django.db import connection
from pypdf import PdfReader

from affiliates.models import Affiliate
from payouts import invoices, runs
from payouts.models import Invoice, Payout
from tests.factories import AffiliateFactory, CampaignFactory, UserFactory
from tests.payouts.helpers import convert, plan

pytestmark = pytest.mark.django_db
OCTOBER = (date(2026, 10, 1), date(2026, 10, 31))


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


@pytest.fixture
def approved(alice, charlie):
    """October's run approved: alice earned 2 FTDs and 3 installs on "Casino DE", charlie 1 FTD."""
    alice.company, alice.vat_id, alice.address = "Alice Media GmbH", "DE811907980", "Berlin"
    alice.save()
    Affiliate.objects.update(minimum_payout=0)  # every balance is paid, however small
    casino = CampaignFactory(name="Casino DE")
    plan(casino, cpa={"ftd": "25.00", "install": "2.00"})
    at = datetime(2026, 10, 5, 12, tzinfo=UTC)
    for _ in range(2):
        convert(alice, casino, type="ftd", amount="100.00", at=at)
    for _ in range(3):
        convert(alice, casino, type="install", amount=None, at=at)
    convert(charlie, casino, type="ftd", amount="100.00", at=at)
    run = runs.payout_run_execute(
        run_id=runs.payout_run_create(period_start=OCTOBER[0], period_end=OCTOBER[1]).pk
    )
    runs.payout_run_approve(run=run, actor=UserFactory(username="boss", is_staff=True))
    return run


def test_approving_a_run_numbers_an_invoice_per_payout_in_order(approved, alice, charlie):
    mine, theirs = (Invoice.objects.get(payout__affiliate=a) for a in (alice, charlie))

    year = mine.issued_at.year
    assert {mine.number, theirs.number} == {f"SB-{year}-000001", f"SB-{year}-000002"}
    assert (mine.amount, mine.currency) == (Decimal("56.00"), "EUR")  # 2 x 25 + 3 x 2
    assert "Alice Media GmbH" in mine.recipient and "DE811907980" in mine.recipient


def test_the_affiliate_downloads_their_invoice_and_reads_every_line(client, approved, alice):
    payout = Payout.objects.get(affiliate=alice)
    client.force_login(alice.user)

    answer = client.get(f"/payouts/{payout.pk}/invoice.pdf")

    assert answer.status_code == 200 and answer["Content-Type"] == "application/pdf"
    text = pdf_text(answer.content)
    number = Invoice.objects.get(payout=payout).number
    assert f"Self-billing invoice {number}" in text
    assert "Alice Media GmbH" in text and "VAT id DE811907980" in text
    assert "Lucky Spins Ltd" in text and "VAT id MT12345678" in text
    assert "period 2026-10-01 to 2026-10-31" in text
    assert "Casino DE - CPA First-time deposit" in text and "50.00 EUR" in text
    assert "Casino DE - CPA Install" in text and "6.00 EUR" in text
    assert "Total" in text and "56.00 EUR" in text


def test_nobody_else_gets_an_affiliates_invoice(client, approved, alice, charlie):
    payout = Payout.objects.get(affiliate=alice)

    client.force_login(charlie.user)
    assert client.get(f"/payouts/{payout.pk}/invoice.pdf").status_code == 404
    client.logout()
    assert client.get(f"/payouts/{payout.pk}/invoice.pdf").status_code == 302  # to the login


def test_a_manager_downloads_any_invoice(manager_client, approved, charlie):
    payout = Payout.objects.get(affiliate=charlie)

    answer = manager_client.get(f"/payouts/{payout.pk}/invoice.pdf")

    assert answer.status_code == 200
    assert "Charlie Traffic" in pdf_text(answer.content)


def test_a_draft_payout_has_no_invoice_yet(client, alice):
    Affiliate.objects.update(minimum_payout=0)
    casino = CampaignFactory(name="Casino AT")
    plan(casino, cpa={"ftd": "25.00"})
    convert(alice, casino, type="ftd", amount="100.00", at=datetime(2026, 10, 5, tzinfo=UTC))
    runs.payout_run_execute(
        run_id=runs.payout_run_create(period_start=OCTOBER[0], period_end=OCTOBER[1]).pk
    )
    payout = Payout.objects.get(affiliate=alice)
    client.force_login(alice.user)

    assert client.get(f"/payouts/{payout.pk}/invoice.pdf").status_code == 404
    with pytest.raises(invoices.NotInvoiceable):
        invoices.invoice_issue(payout=payout)
    assert not Invoice.objects.exists()


def test_names_in_any_script_are_kept(client, approved, alice):
    alice.company = "Älice Médias Ελλάς ООО"  # noqa: RUF001 - Cyrillic on purpose
    alice.save()
    payout = Payout.objects.get(affiliate=alice)
    Invoice.objects.filter(payout=payout).delete()  # issued again with the new name
    client.force_login(alice.user)

    text = pdf_text(client.get(f"/payouts/{payout.pk}/invoice.pdf").content)

    assert "Älice Médias Ελλάς ООО" in text  # noqa: RUF001


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_issuing_never_shares_or_skips_a_number():
    campaign = CampaignFactory(name="Casino FI")
    plan(campaign, cpa={"ftd": "10.00"})
    affiliates = [AffiliateFactory(minimum_payout=0) for _ in range(6)]
    for affiliate in affiliates:
        convert(
            affiliate, campaign, type="ftd", amount="50.00", at=datetime(2026, 10, 3, tzinfo=UTC)
        )
    run = runs.payout_run_execute(
        run_id=runs.payout_run_create(period_start=OCTOBER[0], period_end=OCTOBER[1]).pk
    )
    Payout.objects.filter(run=run).update(status="approved")
    payouts = list(Payout.objects.filter(run=run))
    errors = []

    def issue(payout):
        try:
            invoices.invoice_issue(payout=payout)
            invoices.invoice_issue(payout=payout)  # again: the same invoice
        except Exception as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=issue, args=(p,)) for p in payouts + payouts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    year = Invoice.objects.first().issued_at.year
    assert numbers == [f"SB-{year}-{n:06d}" for n in range(1, 7)]
