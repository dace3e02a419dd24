"""The simulated month (tests/simulation.py) extended with the operator's player activity: the
player report, the cohorts and the NGR ledger held to figures worked out from the truth.

The month goes through the real endpoints into the inbox and is attributed one postback at a
time; then October's and November's activity comes in through POST /api/v1/player-activity/,
October and November are closed, and every figure is compared with one computed here from the
simulation's truth alone (who brought which player, when, and what they played).
"""

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.utils.crypto import salted_hmac
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from affiliates.models import Affiliate, Brand, Campaign
from attribution.models import Postback
from attribution.processing import single
from payouts import ledger
from payouts.models import CommissionPlan, LedgerEntry, PlanAssignment, PlanVersion
from tests import simulation
from tests.attribution.test_batch import _play
from tests.attribution.test_simulated_month import SEED, check
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PERCENT = {"casino": Decimal(30), "sportsbook": Decimal(25)}
FEE = Decimal(10)  # admin fee, % of GGR; bonuses are the one deduction
CENTS = Decimal("0.01")


def ngr_of(row: simulation.ActivityRow) -> Decimal:
    return row.ggr - row.bonuses - row.ggr * FEE / 100


@pytest.fixture
def month_with_activity(client):
    # given the month attributed, an NGR plan on every campaign, and the activity sent
    month = simulation.generate(SEED)
    simulation.install(month)
    plan = CommissionPlan.objects.create(name="Casino NGR", currency="EUR", hold_days=0)
    PlanVersion.objects.create(
        plan=plan,
        valid_from="2026-01-01T00:00:00Z",
        revshare_percent=Decimal(30),
        admin_fee_percent=FEE,
        revshare_basis="ngr",
        ngr_deductions=["bonuses"],
        product_percents={"sportsbook": "25"},
    )
    # the simulation's own CPA plan gives way: NGR RevShare is the program here
    PlanAssignment.objects.filter(affiliate=None).delete()
    for campaign in Campaign.objects.all():
        PlanAssignment.objects.create(plan=plan, campaign=campaign)
    played = _play(month, client)
    single.postbacks_one_by_one(
        list(Postback.objects.filter(status="received").order_by("pk").values_list("pk", flat=True))
    )
    problems, _ = check(month, played)
    assert not problems, problems[:10]
    manager = UserFactory(username="sim-manager", is_staff=True)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    brand = Brand.objects.get()
    rows = [{**r.as_api(), "brand": brand.pk} for r in simulation.activity(month)]
    answer = api.post("/api/v1/player-activity/", rows, format="json")
    assert answer.status_code == 200, answer.content
    assert answer.json()["created"] == len(rows)
    return month, api, brand


def _truth_figures(month):
    """Per attributed player: NGR, commission and deposits per month, from the truth only."""
    truths = simulation.players(month)
    figures = defaultdict(lambda: defaultdict(lambda: defaultdict(Decimal)))
    for row in simulation.activity(month):
        truth = truths.get(row.player_id)
        if truth is None or truth.affiliate is None:
            continue
        first = date.fromisoformat(row.day).replace(day=1)
        mine = figures[row.player_id][first]
        mine["ngr"] += ngr_of(row)
        mine["commission"] += ngr_of(row) * PERCENT[row.product] / 100
        mine["deposits"] += row.deposits
    return truths, figures


def test_the_player_report_matches_the_truth(month_with_activity):
    month, _, brand = month_with_activity
    truths, figures = _truth_figures(month)
    brought = {t.affiliate for t in truths.values() if t.affiliate}
    assert len(brought) >= 2 and sum(1 for t in truths.values() if t.affiliate) >= 10
    for username in brought:
        affiliate = Affiliate.objects.get(user__username=username)
        client = APIClient()
        token = Token.objects.get_or_create(user=affiliate.user)[0]
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")

        answer = client.get("/api/v1/reports/players/")

        assert answer.status_code == 200
        shown = {r["player"]: r for r in answer.json()["players"]}
        expected = {}
        for player, truth in truths.items():
            if truth.affiliate != username:
                continue
            months = figures[player].values()
            total = {k: sum((m[k] for m in months), Decimal(0)) for k in ("ngr", "commission")}
            deposits = sum((m["deposits"] for m in months), Decimal(0))
            expected[salted_hmac("payouts.player", f"{brand.pk}:{player}").hexdigest()[:16]] = (
                truth.registered_at.date().isoformat() if truth.registered_at else None,
                truth.ftd_at.date().isoformat() if truth.ftd_at else None,
                f"{truth.ftd_amount:.2f}" if truth.ftd_amount is not None else None,
                f"{deposits.quantize(CENTS, ROUND_HALF_EVEN)}",
                f"{total['ngr'].quantize(CENTS, ROUND_HALF_EVEN)}",
                f"{total['commission'].quantize(CENTS, ROUND_HALF_EVEN)}",
                truth.channel,
            )
        got = {
            p: (
                r["registered_on"],
                r["ftd_on"],
                r["ftd_amount"],
                r["deposits"],
                r["ngr"],
                r["commission"],
                r["channel"],
            )
            for p, r in shown.items()
        }
        assert got == expected, username


def test_the_cohorts_match_the_truth(month_with_activity):
    month, api, _ = month_with_activity
    truths, figures = _truth_figures(month)
    for by, when in (("ftd_month", "ftd_at"), ("registration_month", "registered_at")):
        expected = defaultdict(lambda: {"players": 0, "values": [Decimal(0)] * 2})
        for player, truth in truths.items():
            joined = getattr(truth, when)
            if truth.affiliate is None or joined is None:
                continue
            cohort = expected[f"{joined:%Y-%m}"]
            cohort["players"] += 1
            for first, mine in figures[player].items():
                k = (first.year - joined.year) * 12 + first.month - joined.month
                if 0 <= k < 2:
                    cohort["values"][k] += mine["ngr"]
        answer = api.get(
            "/api/v1/reports/cohorts/", {"by": by, "metric": "ngr", "through": "2026-11"}
        )
        assert answer.status_code == 200
        got = {c["cohort"]: (c["players"], c["values"]) for c in answer.json()["cohorts"]}
        assert sum(players for players, _ in got.values()) >= 10
        assert got == {
            name: (c["players"], [f"{v.quantize(CENTS, ROUND_HALF_EVEN)}" for v in c["values"]])
            for name, c in expected.items()
        }, by


def test_the_ngr_ledger_matches_the_truth(month_with_activity):
    month, *_ = month_with_activity
    truths, _ = _truth_figures(month)
    ledger.month_close(period=date(2026, 10, 1))
    ledger.month_close(period=date(2026, 11, 1))
    # per affiliate, month and product: NGR; 30% / 25% of what it comes to with carry-over
    ngr = defaultdict(lambda: defaultdict(Decimal))
    for row in simulation.activity(month):
        truth = truths.get(row.player_id)
        if truth is not None and truth.affiliate is not None:
            ngr[truth.affiliate][row.day[:7], row.product] += ngr_of(row)
    for username, months in ngr.items():
        expected, carried = Decimal(0), defaultdict(Decimal)
        for first in ("2026-10", "2026-11"):
            for product in simulation.PRODUCTS:
                basis = months[first, product] + carried[product]
                if basis > 0:
                    expected += (basis * PERCENT[product] / 100).quantize(CENTS, ROUND_HALF_EVEN)
                carried[product] = basis.quantize(CENTS, ROUND_HALF_EVEN) if basis < 0 else 0
        revshare = LedgerEntry.objects.filter(
            beneficiary__user__username=username, kind__in=["revshare", "adjustment"]
        ).exclude(status="void")
        assert sum(e.amount for e in revshare) == expected, username
