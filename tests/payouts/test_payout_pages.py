"""Managers run payouts in the admin; affiliates read their own statements and nobody else's."""

import csv
import io
from datetime import date

import pytest
from django.urls import reverse

from payouts import runs
from payouts.models import Payout, PayoutRun
from tests.conftest import staff_login
from tests.factories import CampaignFactory
from tests.payouts.helpers import convert, plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def paid_run(alice, charlie):
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "75.00"})
    convert(alice, campaign, player="a")
    convert(charlie, campaign, player="c")
    run = runs.payout_run_create(period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    return runs.payout_run_execute(run_id=run.pk)


def test_a_manager_starts_a_run_from_the_admin(client, manager, django_capture_on_commit_callbacks):
    staff_login(client, manager)
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(
            reverse("admin:payouts_payoutrun_add"),
            {"period_start": "2026-10-01", "period_end": "2026-10-31"},
        )
    assert response.status_code == 302
    run = PayoutRun.objects.get()
    assert (run.period_start, run.status) == (date(2026, 10, 1), "running")
    assert len(callbacks) == 1  # the worker is asked after commit


def test_the_run_exports_as_csv(client, manager, paid_run):
    staff_login(client, manager)
    response = client.post(
        reverse("admin:payouts_payoutrun_changelist"),
        {"action": "export_csv", "_selected_action": [paid_run.pk]},
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert sorted((r["affiliate"], r["amount"], r["entries"]) for r in rows) == [
        ("Alice Media", "75.00", "1"),
        ("Charlie Traffic", "75.00", "1"),
    ]


def test_marking_paid_needs_approval_and_a_reference(client, manager, paid_run):
    staff_login(client, manager)
    payout = paid_run.payouts.first()
    changelist = reverse("admin:payouts_payout_changelist")
    client.post(
        changelist, {"action": "mark_paid", "_selected_action": [payout.pk], "reference": "X"}
    )
    assert Payout.objects.get(pk=payout.pk).status == "draft"
    client.post(
        reverse("admin:payouts_payoutrun_changelist"),
        {"action": "approve", "_selected_action": [paid_run.pk]},
    )
    client.post(
        changelist, {"action": "mark_paid", "_selected_action": [payout.pk], "reference": ""}
    )
    assert Payout.objects.get(pk=payout.pk).status == "approved"
    client.post(
        changelist,
        {"action": "mark_paid", "_selected_action": [payout.pk], "reference": "SEPA-2026-10-1"},
    )
    paid = Payout.objects.get(pk=payout.pk)
    assert (paid.status, paid.reference) == ("paid", "SEPA-2026-10-1")
    assert set(paid.lines.values_list("status", flat=True)) == {"paid"}


def test_an_affiliate_reads_their_own_statement_only(client, alice, charlie, paid_run):
    mine = paid_run.payouts.get(affiliate=alice)
    theirs = paid_run.payouts.get(affiliate=charlie)
    client.force_login(alice.user)
    page = client.get(reverse("payout-statement", args=[mine.pk]))
    assert page.status_code == 200
    assert b"75.00 EUR" in page.content and b"Alice Media" in page.content
    assert client.get(reverse("payout-statement", args=[theirs.pk])).status_code == 404
    assert client.get(reverse("payout-statement", args=[999999])).status_code == 404


def test_a_statement_needs_a_login(client, paid_run):
    response = client.get(reverse("payout-statement", args=[paid_run.payouts.first().pk]))
    assert response.status_code == 302
