"""Property: whatever the activity, its revisions and repeats, and the NGR plan, the RevShare
ledger holds what the players' NGR comes to under the plan's formula, to the cent."""

from collections import defaultdict
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from payouts import activity, ledger
from payouts.models import LedgerEntry
from tests.factories import AffiliateFactory, CampaignFactory
from tests.payouts.helpers import ngr_plan, register

pytestmark = pytest.mark.django_db
MONTHS = [date(2026, 9, 1), date(2026, 10, 1), date(2026, 11, 1)]
PRODUCTS = ["casino", "sportsbook", "poker"]
PLAYERS = ["a1", "a2", "b1", "organic", "unknown"]  # a* alice's, b* bob's
OWNER = {"a1": 0, "a2": 0, "b1": 1}
CENTS = st.integers(min_value=-50_000, max_value=200_000).map(lambda c: Decimal(c) / 100)
COSTS = st.integers(min_value=0, max_value=20_000).map(lambda c: Decimal(c) / 100)

ROW = st.fixed_dictionaries(
    {
        "player": st.sampled_from(PLAYERS),
        "day": st.integers(1, 28),
        "product": st.sampled_from(PRODUCTS),
        "ggr": CENTS,
        "bonuses": COSTS,
        "chargebacks": COSTS,
        "taxes": COSTS,
        "fees": COSTS,
    }
)
# Per month: new rows, then rows of any earlier month sent again as they were (by index) or
# revised (a new GGR), before the month is closed.
MONTH = st.tuples(
    st.lists(ROW, max_size=6),
    st.lists(st.integers(0, 50), max_size=3),
    st.lists(st.tuples(st.integers(0, 50), CENTS), max_size=2),
)
PLAN = st.fixed_dictionaries(
    {
        "percent": st.sampled_from(["25", "30", "33.3333"]),
        "products": st.sampled_from([{}, {"casino": "30"}, {"casino": "35", "sportsbook": "20"}]),
        "deductions": st.lists(
            st.sampled_from(["bonuses", "chargebacks", "taxes", "fees"]), unique=True
        ),
        "fee": st.sampled_from(["0", "10", "12.5"]),
        "carryover": st.booleans(),
    }
)


def expected_revshare(rows: dict[tuple, dict], setup: dict, owner: int) -> Decimal:
    """The plan's formula worked by hand over each of the owner's players' rows as they stand."""
    cents = Decimal("0.01")
    ngr: dict[tuple[date, str], Decimal] = defaultdict(Decimal)
    for (player, on, product), row in rows.items():
        if OWNER.get(player) != owner:
            continue
        ggr = row["ggr"]
        taken = sum((row[d] for d in setup["deductions"]), Decimal(0))
        ngr[on.replace(day=1), product] += ggr - taken - ggr * Decimal(setup["fee"]) / 100
    earned, carried = Decimal(0), defaultdict(Decimal)
    for month in MONTHS:
        for product in PRODUCTS:
            basis = ngr[month, product] + carried[product]
            percent = Decimal(setup["products"].get(product, setup["percent"]))
            if basis > 0:
                earned += (basis * percent / 100).quantize(cents, ROUND_HALF_EVEN)
            negative = basis < 0 and setup["carryover"]
            carried[product] = basis.quantize(cents, ROUND_HALF_EVEN) if negative else Decimal(0)
    return earned


def as_api(player: str, on: date, product: str, row: dict) -> dict:
    return {
        "player_id": player,
        "date": on.isoformat(),
        "product": product,
        "currency": "EUR",
        **{k: str(v) for k, v in row.items()},
    }


def ledger_total(affiliate) -> Decimal:
    entries = LedgerEntry.objects.filter(beneficiary=affiliate).exclude(status="void")
    return entries.aggregate(s=Sum("amount"))["s"] or Decimal(0)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(setup=PLAN, months=st.tuples(MONTH, MONTH, MONTH))
def test_the_ledger_equals_the_players_ngr_under_the_plan_and_repeats_change_nothing(
    db, setup, months
):
    with transaction.atomic():
        # given
        campaign = CampaignFactory()
        alice, bob = AffiliateFactory(), AffiliateFactory()
        ngr_plan(
            campaign,
            percent=setup["percent"],
            products=setup["products"],
            deductions=tuple(setup["deductions"]),
            fee=setup["fee"],
            carryover=setup["carryover"],
        )
        for player, owner in OWNER.items():
            register([alice, bob][owner], campaign, player)
        register(None, campaign, "organic")
        stored: dict[tuple, dict] = {}  # what the operator's platform holds now
        sent: list[tuple] = []

        def send(keys: list[tuple]) -> activity.Outcome:
            rows = [as_api(*key, stored[key]) for key in dict.fromkeys(keys)]
            outcome, errors = activity.activity_ingest(raw_rows=rows, brand_id=campaign.brand_id)
            assert not errors, errors
            return outcome

        # when: month by month, new rows, repeats and revisions, then the month is closed
        for month, (new, repeats, revisions) in zip(MONTHS, months, strict=True):
            fresh = []
            for row in new:
                key = (row["player"], month.replace(day=row["day"]), row["product"])
                amounts = {k: row[k] for k in ("ggr", "bonuses", "chargebacks", "taxes", "fees")}
                stored[key] = amounts
                fresh.append(key)
            if fresh:
                send(fresh)
            sent.extend(k for k in fresh if k not in sent)
            if sent:
                before = ledger_total(alice), ledger_total(bob)
                again = send([sent[i % len(sent)] for i in repeats]) if repeats else None
                assert again is None or (again.created, again.revised) == (0, 0)
                assert (ledger_total(alice), ledger_total(bob)) == before
                revised = []
                for index, ggr in revisions:
                    key = sent[index % len(sent)]
                    stored[key] = {**stored[key], "ggr": ggr}
                    revised.append(key)
                if revised:
                    send(revised)
            ledger.month_close(period=month)

        # then
        assert ledger_total(alice) == expected_revshare(stored, setup, 0)
        assert ledger_total(bob) == expected_revshare(stored, setup, 1)
        # and everything sent again, and the months closed again, changes nothing
        entries = LedgerEntry.objects.count()
        if stored:
            assert send(list(stored)).unchanged == len(stored)
        for month in MONTHS:
            ledger.month_close(period=month)
        assert LedgerEntry.objects.count() == entries
        transaction.set_rollback(True)
