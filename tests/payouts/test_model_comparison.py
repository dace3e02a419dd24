"""Attribution models side by side: each model's credit over constructed multi-touch paths,
worked by hand, and every model adding up to the same totals."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from attribution.crediting.multitouch import data_driven_shares, removal_effects
from attribution.models import Click
from tests.factories import AffiliateFactory, ConversionFactory, TrackingLinkFactory
from tests.payouts.helpers import day, send_activity

T = datetime(2026, 11, 20, 12, tzinfo=UTC)
WEEK = timedelta(days=7)


# Paths: [A] -> conversion, [A, B] -> conversion, [B] -> conversion, [C, B] -> conversion, and
# [A] -> nothing. Transitions: start -> A 3/5, B 1/5, C 1/5; A -> conversion 1/3, B 1/3, null
# 1/3; B -> conversion 1; C -> B 1. P(conversion) = 3/5 * 2/3 + 1/5 + 1/5 = 4/5.
# Without A: 1/5 + 1/5 = 2/5, removal effect 1 - (2/5)/(4/5) = 1/2.
# Without B: A converts 1/3 only, C never: 3/5 * 1/3 = 1/5, removal effect 3/4.
# Without C: 2/5 + 1/5 = 3/5, removal effect 1/4.
CONVERTED = [["A"], ["A", "B"], ["B"], ["C", "B"]]


def test_removal_effects_match_the_hand_computation():
    assert removal_effects(CONVERTED, lost=[["A"]]) == {
        "A": Fraction(1, 2),
        "B": Fraction(3, 4),
        "C": Fraction(1, 4),
    }
    # Without the lost path every path converts; the effects happen to be the same here:
    # start -> A 2/4, B 1/4, C 1/4; A -> conversion 1/2, B 1/2. Without A: 1/2; without B:
    # 2/4 * 1/2 = 1/4; without C: 3/4.
    assert removal_effects(CONVERTED) == {
        "A": Fraction(1, 2),
        "B": Fraction(3, 4),
        "C": Fraction(1, 4),
    }


def test_a_path_is_split_by_its_states_removal_effects():
    effects = {"A": Fraction(1, 2), "B": Fraction(3, 4), "C": Fraction(1, 4)}
    # A, B: 1/2 : 3/4 = 0.4 : 0.6; C, B: 1/4 : 3/4
    assert data_driven_shares(["A", "B"], effects) == [Decimal("0.4"), Decimal("0.6")]
    assert data_driven_shares(["C", "B"], effects) == [Decimal("0.25"), Decimal("0.75")]
    assert data_driven_shares(["A"], effects) == [Decimal(1)]
    assert data_driven_shares(["X", "Y"], effects) == [Decimal("0.5"), Decimal("0.5")]


def test_repeated_touches_of_one_state_are_one_visit():
    assert removal_effects([["A", "A", "B"]]) == removal_effects([["A", "B"]])


# --- the report over HTTP -----------------------------------------------------------------------


@pytest.fixture
def paths(db, campaign):
    """The four converting paths above as real clicks and conversions on one iOS app: three
    installs ([A], [B], [C 7 days before, B]) and one FTD ([A 7 days before, B]) of player P-X,
    who plays for an NGR of 1,000 in November."""
    affiliates = {name: AffiliateFactory(name=name) for name in "ABC"}
    links = {n: TrackingLinkFactory(affiliate=a, campaign=campaign) for n, a in affiliates.items()}

    def touch(name: str, device: str, at: datetime) -> Click:
        return Click.objects.create(
            click_id=f"{device}-{name}-{at:%d}",
            link=links[name],
            affiliate=affiliates[name],
            campaign=campaign,
            created_at=at,
            platform="ios",
            idfa=device,
        )

    def convert(path: list[str], device: str, kind: str = "install", player: str = ""):
        clicks = [touch(n, device, T - WEEK * (len(path) - 1 - i)) for i, n in enumerate(path)]
        return ConversionFactory(
            type=kind,
            affiliate=clicks[-1].affiliate,
            campaign=campaign,
            click=clicks[-1],
            app=campaign.ios_app,
            brand=campaign.brand,
            occurred_at=T,
            channel="mobile",
            platform="ios",
            player_key=f"player:{campaign.brand_id}:{player}" if player else f"idfa:{device}",
        )

    devices = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(4)]
    convert(["A"], devices[0])
    convert(["A", "B"], devices[1], kind="ftd", player="P-X")
    convert(["B"], devices[2])
    convert(["C", "B"], devices[3])
    send_activity(campaign, day("P-X", "2026-11-21", ggr="1000"))
    return affiliates


def credit(manager, affiliates) -> dict:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    answer = client.get("/api/v1/reports/models/", {"start": "2026-11", "end": "2026-11"})
    assert answer.status_code == 200, answer.content
    names = {a.pk: name for name, a in affiliates.items()}
    return {names[r["affiliate"]]: r["credit"] for r in answer.json()["rows"]}


@pytest.mark.parametrize(
    ("model", "installs", "ftds", "ngr"),
    [
        # installs: [A], [B], [C, B]; the FTD: [A, B] with NGR 1,000
        ("first_click", ("1", "1", "1"), ("1", "0", "0"), ("1000.00", "0.00", "0.00")),
        ("last_click", ("1", "2", "0"), ("0", "1", "0"), ("0.00", "1000.00", "0.00")),
        ("linear", ("1", "1.5", "0.5"), ("0.5", "0.5", "0"), ("500.00", "500.00", "0.00")),
        (
            "time_decay",  # 7 days before: half the weight, so 1/3 and 2/3
            ("1", "1.666667", "0.333333"),
            ("0.333333", "0.666667", "0"),
            ("333.33", "666.67", "0.00"),
        ),
        ("position_based", ("1", "1.5", "0.5"), ("0.5", "0.5", "0"), ("500.00", "500.00", "0.00")),
        (
            "data_driven",  # A, B 0.4 : 0.6; C, B 0.25 : 0.75
            ("1", "1.75", "0.25"),
            ("0.4", "0.6", "0"),
            ("400.00", "600.00", "0.00"),
        ),
    ],
)
def test_each_model_credits_what_the_hand_computation_says(
    manager, paths, model, installs, ftds, ngr
):
    shown = credit(manager, paths)
    for i, name in enumerate("ABC"):
        mine = shown[name][model]
        assert Decimal(mine["installs"]) == Decimal(installs[i]), (model, name)
        assert Decimal(mine["ftds"]) == Decimal(ftds[i]), (model, name)
        assert mine["ngr"] == ngr[i], (model, name)


def test_every_model_adds_up_to_the_same_totals(manager, paths):
    shown = credit(manager, paths)
    for model in shown["A"]:
        totals = {
            metric: sum(Decimal(shown[n][model][metric]) for n in "ABC")
            for metric in ("installs", "ftds", "ngr", "commission")
        }
        assert totals == {
            "installs": Decimal(3),
            "ftds": Decimal(1),
            "ngr": Decimal("1000.00"),
            "commission": Decimal(0),
        }, model


def test_affiliates_may_not_compare_models(alice, paths):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice.user).key}")
    assert client.get("/api/v1/reports/models/").status_code == 403


@pytest.mark.parametrize(
    ("model", "a", "b"),
    [
        # P-X came through A (7 days before) and B; its NGR in November is 1,000.
        ("last_click", None, ("1", ["1000.00"])),
        ("first_click", ("1", ["1000.00"]), None),
        ("linear", ("1", ["500.00"]), ("1", ["500.00"])),
        ("data_driven", ("1", ["400.00"]), ("1", ["600.00"])),
    ],
)
def test_cohorts_by_another_model_split_a_player_by_their_shares(manager, paths, model, a, b):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    for affiliate, expected in ((paths["A"], a), (paths["B"], b)):
        answer = client.get(
            "/api/v1/reports/cohorts/",
            {"affiliate": affiliate.pk, "model": model, "through": "2026-11"},
        )
        assert answer.status_code == 200, answer.content
        shown = [(c["players"], c["values"]) for c in answer.json()["cohorts"]]
        assert shown == ([] if expected is None else [(int(expected[0]), expected[1])]), model


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("last_click", ("2.000000", "1.000000", "1000.00")),
        ("data_driven", ("1.750000", "0.600000", "600.00")),
        ("time_decay", ("1.666667", "0.666667", "666.67")),
    ],
)
def test_stats_with_a_model_show_what_it_credits(manager, paths, model, expected):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=manager).key}")
    query = {
        "period": "custom",
        "start": "2026-11-01",
        "end": "2026-11-30",
        "affiliate": paths["B"].pk,
        "model": model,
    }
    answer = client.get("/api/v1/stats/", query)
    assert answer.status_code == 200, answer.content
    shown = answer.json()["model_credit"]
    assert (shown["model"], shown["installs"], shown["ftds"], shown["ngr"]) == (model, *expected)
    without = client.get("/api/v1/stats/", {k: v for k, v in query.items() if k != "model"})
    assert "model_credit" not in without.json()
    assert client.get("/api/v1/stats/", {**query, "model": "u_shaped"}).status_code == 400
