"""The player report and cohorts, over HTTP, against figures worked out by hand."""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from attribution.models import Conversion
from attribution.processing import amend
from payouts import cohort_facts
from payouts.models import CpaRule, PlanVersion
from payouts.reports import pseudonym
from tests.factories import CampaignFactory
from tests.payouts.helpers import day, ngr_plan, register, send_activity

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def at(month: int, day_: int) -> datetime:
    return datetime(2026, month, day_, 12, tzinfo=UTC)


@pytest.fixture
def program(alice, charlie):
    """Casino at 30%, sportsbook 25%, every deduction, a 40.00 CPA per FTD.

    alice: P-1 registers Oct 1 (web), deposits first Oct 2 (100.00); P-2 registers Oct 20
    on the app and deposits first Nov 3 (50.00). charlie: P-3. Nobody: P-4 (organic).
    """
    campaign = CampaignFactory()
    plan = ngr_plan(campaign, percent="30", products={"sportsbook": "25"})
    CpaRule.objects.create(
        version=PlanVersion.objects.get(plan=plan), conversion_type="ftd", amount=Decimal("40")
    )
    register(alice, campaign, "P-1", at=at(10, 1))
    register(alice, campaign, "P-1", at=at(10, 2), type="ftd", amount="100")
    register(alice, campaign, "P-2", at=at(10, 20), channel="mobile")
    register(alice, campaign, "P-2", at=at(11, 3), type="ftd", amount="50", channel="mobile")
    register(charlie, campaign, "P-3", at=at(10, 5))
    register(None, campaign, "P-4", at=at(10, 5))
    send_activity(
        campaign,
        day("P-1", "2026-10-05", ggr="1000", bonuses="100", deposits="500"),
        day("P-1", "2026-11-05", ggr="-200", deposits="100"),
        day("P-2", "2026-11-06", "sportsbook", ggr="400", deposits="300"),
        day("P-2", "2026-12-06", "sportsbook", ggr="100"),
        day("P-3", "2026-10-06", ggr="999"),
        day("P-4", "2026-10-06", ggr="5000", deposits="5000"),
    )
    return campaign


def cohorts(client, **query):
    answer = client.get("/api/v1/reports/cohorts/", {"through": "2026-12", **query})
    assert answer.status_code == 200, answer.content
    return [(c["cohort"], c["players"], c["values"]) for c in answer.json()["cohorts"]]


# P-1: Oct NGR 1,000 - 100 = 900, 30% = 270 + CPA 40; Nov NGR -200, 30% = -60.
# P-2: Nov sportsbook NGR 400, 25% = 100 + CPA 40; Dec 100, 25% = 25.
@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            {"by": "ftd_month", "metric": "ngr"},
            [("2026-10", 1, ["900.00", "-200.00", "0.00"]), ("2026-11", 1, ["400.00", "100.00"])],
        ),
        (
            {"by": "ftd_month", "metric": "commission"},
            [("2026-10", 1, ["310.00", "-60.00", "0.00"]), ("2026-11", 1, ["140.00", "25.00"])],
        ),
        (
            {"by": "ftd_month", "metric": "deposits"},
            [("2026-10", 1, ["500.00", "100.00", "0.00"]), ("2026-11", 1, ["300.00", "0.00"])],
        ),
        (
            {"by": "ftd_month", "metric": "players"},
            [("2026-10", 1, ["1", "1", "0"]), ("2026-11", 1, ["1", "1"])],
        ),
        (
            {"by": "registration_month", "metric": "ngr"},
            [("2026-10", 2, ["900.00", "200.00", "100.00"])],
        ),
        (
            {"by": "registration_month", "metric": "ngr_per_player"},
            [("2026-10", 2, ["450.00", "550.00", "600.00"])],
        ),
    ],
)
def test_alices_cohorts_hold_her_players_month_by_month(alice, program, query, expected):
    assert cohorts(client_for(alice.user), **query) == expected


def test_a_manager_sees_every_affiliates_cohorts_or_one_campaigns_channel(
    manager, alice, charlie, program
):
    client = client_for(manager)
    everyone = cohorts(client, by="registration_month", metric="ngr")
    assert everyone == [("2026-10", 3, ["1899.00", "200.00", "100.00"])]
    mobile = cohorts(client, by="registration_month", metric="ngr", channel="mobile")
    assert mobile == [("2026-10", 1, ["0.00", "400.00", "100.00"])]
    assert cohorts(client, affiliate=charlie.pk) == []  # P-3 has no FTD
    assert cohorts(client, by="registration_month", affiliate=charlie.pk) == [
        ("2026-10", 1, ["999.00", "0.00", "0.00"])
    ]


def test_the_player_report_shows_each_player_by_a_pseudonym_for_the_months_asked(alice, program):
    answer = client_for(alice.user).get(
        "/api/v1/reports/players/", {"start": "2026-11", "end": "2026-11"}
    )

    assert answer.status_code == 200, answer.content
    data = answer.json()
    assert data["currency"] == "EUR"
    rows = {r["player"]: r for r in data["players"]}
    p1, p2 = pseudonym(program.brand_id, "P-1"), pseudonym(program.brand_id, "P-2")
    assert set(rows) == {p1, p2}
    assert "P-1" not in answer.content.decode()
    assert rows[p1] | {"campaign": None} == {
        "player": p1,
        "affiliate": alice.pk,
        "campaign": None,
        "channel": "web",
        "registered_on": "2026-10-01",
        "ftd_on": "2026-10-02",
        "ftd_amount": "100.00",
        "deposits": "100.00",
        "ngr": "-200.00",
        "commission": "-60.00",
    }
    assert (rows[p2]["channel"], rows[p2]["ngr"], rows[p2]["commission"]) == (
        "mobile",
        "400.00",
        "140.00",
    )


def test_the_player_report_as_csv_has_the_same_rows(alice, program):
    answer = client_for(alice.user).get("/api/v1/reports/players/", {"format": "csv"})

    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(answer.content.decode())))
    by_player = {r["player"]: r for r in rows}
    p1 = by_player[pseudonym(program.brand_id, "P-1")]
    # all months: NGR 900 - 200; commission 310 - 60
    assert (p1["ngr"], p1["commission"], p1["deposits"]) == ("700.00", "250.00", "600.00")
    assert len(rows) == 2


@pytest.mark.parametrize(
    "query",
    [
        {"by": "week"},
        {"metric": "ggr"},
        {"through": "2026-13"},
        {"channel": "tv"},
        {"affiliate": "x"},
    ],
)
def test_a_bad_query_is_a_400(alice, program, query):
    answer = client_for(alice.user).get("/api/v1/reports/cohorts/", query)
    assert answer.status_code == 400
    assert "detail" in answer.json()


def test_an_affiliate_asking_for_another_ones_players_gets_a_404(alice, charlie, program):
    answer = client_for(alice.user).get("/api/v1/reports/players/", {"affiliate": charlie.pk})
    assert answer.status_code == 404


def test_alices_cohort_page_draws_the_heat_map_and_exports_csv(client, alice, program):
    client.force_login(alice.user)

    page = client.get("/dashboard/cohorts/", {"by": "registration_month", "metric": "ngr"})
    exported = client.get(
        "/dashboard/cohorts/", {"by": "registration_month", "metric": "ngr", "export": "csv"}
    )

    html = page.content.decode()
    assert page.status_code == 200
    # 2026-10: 2 players, 900 / 200 / 100 (the largest shaded fully)
    assert '<td class="num" style="background: rgba(37, 99, 235, 1.00)">900.00</td>' in html
    assert '<td class="num" style="background: rgba(37, 99, 235, 0.11)">100.00</td>' in html
    assert "999.00" not in html  # charlie's player
    rows = list(csv.reader(io.StringIO(exported.content.decode())))
    assert rows[0][:2] == ["cohort", "players"]
    assert rows[1][:2] == ["2026-10", "2"]
    assert rows[1][2] == "900.00"


def test_the_managers_cohort_page_shows_one_affiliate_or_the_program(
    manager_client, charlie, program
):
    url = "/admin/payouts/playeractivity/cohorts/"
    everyone = manager_client.get(url, {"by": "registration_month"}).content.decode()
    charlies = manager_client.get(
        url, {"by": "registration_month", "affiliate": charlie.pk}
    ).content.decode()
    assert "1899.00" in everyone  # 900 + 999
    assert "999.00" in charlies and "1899.00" not in charlies


# --- the kept facts follow every change (payouts.cohort_facts) ----------------------------------


def test_a_later_day_of_activity_shows_in_the_next_report(manager, program):
    client = client_for(manager)
    assert cohorts(client, by="registration_month", metric="ngr") == [
        ("2026-10", 3, ["1899.00", "200.00", "100.00"])
    ]

    # P-1 plays again in December: GGR 50, every deduction nil
    send_activity(program, day("P-1", "2026-12-07", ggr="50"))

    assert cohorts(client, by="registration_month", metric="ngr") == [
        ("2026-10", 3, ["1899.00", "200.00", "150.00"])
    ]


def test_a_new_rate_in_the_plan_moves_the_commission_of_every_player(manager, program):
    client = client_for(manager)
    before = cohorts(client, by="registration_month", metric="commission")

    # the casino rate from 30% to 50% on the plan's version (sportsbook stays 25%)
    version = PlanVersion.objects.get(plan__assignments__campaign=program)
    version.revshare_percent = Decimal("50")
    version.save()

    after = cohorts(client, by="registration_month", metric="commission")
    # October's casino NGR 1899.00 (P-1 900, P-3 999): commission 569.70 -> 949.50, CPA 40 kept
    assert before[0][2][0] == "609.70"
    assert after[0][2][0] == "989.50"


def test_a_player_whose_registration_is_rejected_leaves_the_cohort(manager, program):
    client = client_for(manager)
    p3 = Conversion.objects.get(player_key=f"player:{program.brand_id}:P-3")

    amend.conversion_review(conversion=p3, approve=False, actor=manager)

    assert cohorts(client, by="registration_month", metric="ngr") == [
        ("2026-10", 2, ["900.00", "200.00", "100.00"])
    ]


def test_facts_built_player_by_player_equal_a_rebuild_from_scratch(manager, program):
    client = client_for(manager)
    queries = [
        {"by": by, "metric": metric}
        for by in ("registration_month", "ftd_month")
        for metric in ("players", "deposits", "ngr", "commission", "ngr_per_player")
    ]
    send_activity(program, day("P-2", "2026-12-09", ggr="75", deposits="10"))
    step_by_step = [cohorts(client, **q) for q in queries]

    cohort_facts.mark_all_stale()
    assert cohort_facts.refresh() == 4  # P-1..P-4: every player a registration names

    assert [cohorts(client, **q) for q in queries] == step_by_step
