"""Payout runs that explain themselves: the run page lists its payouts with totals per currency
and what it carried forward; a bad period is a form error (admin), a 400 (API) or a command
error, never a 500; months whose RevShare is not closed need a confirmation everywhere."""

from datetime import UTC, date, datetime
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from affiliates.models import Affiliate, Campaign
from payouts import ledger, runs
from payouts.models import Cap, CommissionPlan, PayoutRun
from tests.factories import AffiliateFactory, CampaignFactory
from tests.payouts.helpers import convert, fx, plan

pytestmark = pytest.mark.django_db

OCT = {"period_start": "2026-10-01", "period_end": "2026-10-31"}


@pytest.fixture
def revshare_october(alice):
    """alice's player deposited in October under a RevShare plan; October is not closed."""
    campaign = CampaignFactory()
    plan(campaign, revshare="25")
    convert(alice, campaign, player="p1", at=datetime(2026, 10, 5, 12, tzinfo=UTC))
    return campaign


def create(**days: str) -> PayoutRun:
    return runs.payout_run_create(
        period_start=date.fromisoformat(days["period_start"]),
        period_end=date.fromisoformat(days["period_end"]),
    )


# --- the service --------------------------------------------------------------------------------


def test_a_reversed_period_is_refused():
    with pytest.raises(runs.PayoutError, match="before it starts"):
        create(period_start="2026-10-31", period_end="2026-10-01")


def test_an_overlapping_period_is_refused_and_a_cancelled_run_frees_it():
    october = create(**OCT)
    with pytest.raises(runs.PayoutError, match=f"overlaps run {october.pk}"):
        create(period_start="2026-10-15", period_end="2026-11-15")
    runs.payout_run_cancel(run=october, actor=None)
    assert create(period_start="2026-10-15", period_end="2026-11-15").pk


def test_dates_out_of_range_and_runs_over_a_year_are_refused():
    with pytest.raises(runs.PayoutError, match="between"):
        create(period_start="1900-01-01", period_end="1900-01-31")
    with pytest.raises(runs.PayoutError, match="at most a year"):
        create(period_start="2026-01-01", period_end="2027-06-30")


def test_a_month_not_closed_for_revshare_needs_a_confirmation(revshare_october):
    with pytest.raises(runs.MonthsOpen, match="2026-10"):
        create(**OCT)
    run = runs.payout_run_create(
        period_start=date(2026, 10, 1), period_end=date(2026, 10, 31), open_months_confirmed=True
    )
    assert run.status == "running"


def test_a_closed_month_needs_no_confirmation(revshare_october):
    ledger.month_close(period=date(2026, 10, 1))
    assert runs.revshare_open_months(date(2026, 10, 1), date(2026, 10, 31)) == []
    assert create(**OCT).pk


def test_a_program_without_revshare_has_no_month_to_close(alice):
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "50.00"})
    convert(alice, campaign, player="a")
    assert runs.revshare_open_months(date(2026, 10, 1), date(2026, 10, 31)) == []


# --- the admin ----------------------------------------------------------------------------------


def test_a_reversed_period_is_a_form_error_in_the_admin(manager_client):
    response = manager_client.post(
        reverse("admin:payouts_payoutrun_add"),
        {"period_start": "2026-10-31", "period_end": "2026-10-01"},
    )
    assert response.status_code == 200
    assert b"before it starts" in response.content
    assert not PayoutRun.objects.exists()


def test_an_overlapping_run_is_a_form_error_in_the_admin(manager_client):
    create(**OCT)
    response = manager_client.post(
        reverse("admin:payouts_payoutrun_add"),
        {"period_start": "2026-10-20", "period_end": "2026-11-20"},
    )
    assert response.status_code == 200
    assert b"overlaps run" in response.content
    assert PayoutRun.objects.count() == 1


def test_the_admin_warns_about_an_open_month_and_creates_the_run_once_confirmed(
    manager_client, revshare_october, django_capture_on_commit_callbacks
):
    add = reverse("admin:payouts_payoutrun_add")
    warned = manager_client.post(add, OCT)
    assert warned.status_code == 200
    assert b"RevShare is not closed for 2026-10" in warned.content
    assert not PayoutRun.objects.exists()

    with django_capture_on_commit_callbacks():
        confirmed = manager_client.post(add, {**OCT, "confirm_open_months": "on"})
    assert confirmed.status_code == 302
    assert PayoutRun.objects.get().period_start == date(2026, 10, 1)


def test_the_run_page_lists_payouts_totals_per_currency_and_what_it_carried(
    manager_client, alice, charlie
):
    # given: alice (EUR) and charlie (USD) are paid; dana's 30.00 is under her 50.00 minimum
    Affiliate.objects.filter(pk=charlie.pk).update(currency="USD")
    charlie.refresh_from_db()
    fx(date(2026, 10, 1), USD="1.20")
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "75.00"})
    small = CampaignFactory()
    plan(small, name="Small", cpa={"ftd": "30.00"})
    dana = AffiliateFactory(name="Dana Small", minimum_payout=Decimal("50.00"))
    convert(alice, campaign, player="a1")
    convert(alice, campaign, player="a2")
    convert(charlie, campaign, player="c1")
    convert(dana, small, player="d1")
    run = runs.payout_run_execute(run_id=create(**OCT).pk)

    page = manager_client.get(reverse("admin:payouts_payoutrun_change", args=[run.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert '<tr data-currency="EUR">' in text and '<tr data-currency="USD">' in text
    usd = run.payouts.get(affiliate=charlie).amount
    assert usd > 0 and usd != Decimal("75.00")
    assert "150.00" in text and f"{usd:.2f}" in text
    assert "Dana Small" in text and "below the affiliate&#x27;s minimum payout (50.00)" in text
    assert page.context["summary"].totals == {"EUR": Decimal("150.00"), "USD": usd}
    assert [c.affiliate.pk for c in page.context["summary"].below_minimum] == [dana.pk]
    assert 'id="approve-run"' in text


def test_the_run_page_approves_a_draft_run(manager_client, manager, alice):
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "75.00"})
    convert(alice, campaign, player="a1")
    run = runs.payout_run_execute(run_id=create(**OCT).pk)

    manager_client.post(reverse("admin:payouts_payoutrun_approve", args=[run.pk]))

    run.refresh_from_db()
    assert run.status == "approved"
    assert set(run.payouts.values_list("status", flat=True)) == {"approved"}


# --- the API ------------------------------------------------------------------------------------


def test_the_api_refuses_a_reversed_period_with_a_400(manager_client):
    response = manager_client.post(
        "/api/v1/payout-runs/",
        {"period_start": "2026-10-31", "period_end": "2026-10-01"},
        content_type="application/json",
    )
    assert response.status_code == 400
    assert "before it starts" in response.json()["period_end"][0]


def test_the_api_asks_to_confirm_an_open_month(manager_client, revshare_october):
    url = "/api/v1/payout-runs/"
    refused = manager_client.post(url, OCT, content_type="application/json")
    assert refused.status_code == 400
    assert "2026-10" in refused.json()["confirm_open_months"][0]

    made = manager_client.post(
        url, {**OCT, "confirm_open_months": True}, content_type="application/json"
    )
    assert made.status_code == 201
    assert made.json()["period_start"] == "2026-10-01"


def test_affiliates_cannot_reach_payout_runs(client, alice):
    client.force_login(alice.user)
    assert client.get("/api/v1/payout-runs/").status_code == 403
    assert client.post("/api/v1/payout-runs/", OCT).status_code == 403


# --- the command --------------------------------------------------------------------------------


def test_the_command_refuses_a_reversed_period():
    with pytest.raises(CommandError, match="before it starts"):
        call_command("payout_run", "--start", "2026-10-31", "--end", "2026-10-01")


def test_the_command_asks_to_confirm_an_open_month(revshare_october):
    with pytest.raises(CommandError, match="--confirm-open-months"):
        call_command("payout_run", "--month", "2026-10")
    out = StringIO()
    call_command("payout_run", "--month", "2026-10", "--confirm-open-months", stdout=out)
    assert "Run " in out.getvalue()


# --- fuzzing the admin's forms: anything typed is a page, never a 500 ---------------------------

TYPED = st.one_of(
    st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(str),
    st.text(max_size=30),
    st.sampled_from(["", "2026-02-30", "0000-00-00", "9999-12-31", "-1", "1e9"]),
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(start=TYPED, end=TYPED, confirm=st.booleans())
def test_fuzzed_payout_run_forms_never_500(manager_client, start, end, confirm):
    form = {"period_start": start, "period_end": end}
    if confirm:
        form["confirm_open_months"] = "on"
    response = manager_client.post(reverse("admin:payouts_payoutrun_add"), form)
    assert response.status_code in (200, 302), (start, end)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    valid_from=TYPED,
    percent=st.one_of(st.text(max_size=12), st.decimals(allow_nan=True).map(str)),
    baseline=st.one_of(st.text(max_size=8), st.integers().map(str)),
    tier_mode=st.sampled_from(["progressive", "retroactive", "x", ""]),
    cpa=st.one_of(st.text(max_size=12), st.decimals(allow_nan=True).map(str)),
)
def test_fuzzed_plan_version_forms_never_500(
    manager_client, valid_from, percent, baseline, tier_mode, cpa
):
    plan_id = plan_fixture_id()
    form = {
        "plan": plan_id,
        "valid_from_0": valid_from,
        "valid_from_1": "00:00:00",
        "revshare_percent": percent,
        "admin_fee_percent": "0",
        "tier_mode": tier_mode,
        "baseline_ftds": baseline,
        "subaffiliate_percents": "[]",
        "cpa_rules-TOTAL_FORMS": "1",
        "cpa_rules-INITIAL_FORMS": "0",
        "cpa_rules-0-conversion_type": "ftd",
        "cpa_rules-0-amount": cpa,
        "tiers-TOTAL_FORMS": "0",
        "tiers-INITIAL_FORMS": "0",
    }
    response = manager_client.post(reverse("admin:payouts_planversion_add"), form)
    assert response.status_code in (200, 302), form


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    limit=st.one_of(
        st.text(max_size=12),
        st.decimals(allow_nan=True).map(str),
        st.sampled_from(["0", "-5", "2.5", "1e30", "99999999999999999999", "10"]),
    ),
    period=st.sampled_from(["day", "week", "month", "year", ""]),
    metric=st.sampled_from(["conversions", "payout", "clicks", ""]),
    conversion_type=st.sampled_from(["ftd", "install", "nonsense", ""]),
    currency=st.one_of(st.text(max_size=5), st.sampled_from(["EUR", "eur", "E1R", ""])),
    action=st.sampled_from(["hold", "unpaid", "fallback", "explode", ""]),
    time_zone=st.one_of(st.text(max_size=20), st.sampled_from(["Europe/Malta", "Mars/Base"])),
    affiliate=st.sampled_from(["", "999999", "x", "-1"]),
)
def test_fuzzed_cap_forms_never_500(
    manager_client, limit, period, metric, conversion_type, currency, action, time_zone, affiliate
):
    campaign = cap_campaign()
    form = {
        "campaign": campaign.pk,
        "affiliate": affiliate,
        "is_active": "on",
        "period": period,
        "time_zone": time_zone,
        "metric": metric,
        "conversion_type": conversion_type,
        "limit": limit,
        "currency": currency,
        "action": action,
    }
    response = manager_client.post(reverse("admin:payouts_cap_add"), form)
    assert response.status_code in (200, 302), form
    for cap in Cap.objects.all():  # whatever was saved is a cap the ledger can count
        assert cap.limit > 0 and cap.period in ("day", "week", "month")
        assert cap.metric != "conversions" or cap.limit == int(cap.limit)
        assert cap.action != "fallback" or cap.campaign.fallback_url


def cap_campaign():
    campaign = Campaign.objects.filter(name="Capped").first()
    return campaign or CampaignFactory(name="Capped")


def plan_fixture_id() -> int:
    fuzzed, _ = CommissionPlan.objects.get_or_create(name="Fuzzed", defaults={"currency": "EUR"})
    return fuzzed.pk


def test_affiliate_minimum_is_kept_by_the_run(alice):
    # the run pays nothing under the minimum: the run page's "below minimum" is the run's rule
    Affiliate.objects.filter(pk=alice.pk).update(minimum_payout=Decimal("500.00"))
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "75.00"})
    convert(alice, campaign, player="a1")
    run = runs.payout_run_execute(run_id=create(**OCT).pk)
    assert not run.payouts.exists()
