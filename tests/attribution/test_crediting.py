"""Attribution: every install and event credited to the right affiliate, once, with its reason."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

import pytest
from django.utils import timezone

from affiliates.models import AuditEvent, Campaign
from attribution.crediting import decide
from attribution.models import (
    Click,
    Conversion,
    DailyRollup,
    FraudPolicy,
    Identity,
    PostbackEvent,
    SkanMapping,
)
from attribution.processing import amend, single
from payouts.models import LedgerEntry
from tests.factories import CampaignFactory, TrackingLinkFactory, UserFactory
from tests.payouts.helpers import plan

pytestmark = pytest.mark.django_db

IDFA = "8C6CBC0D-5F43-4765-A6E6-84DFF3D24707"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148"
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def click(
    client, affiliate, campaign, *, at: datetime, idfa: str = "", ip="198.51.100.7", sub1="fb"
) -> Click:
    link = TrackingLinkFactory(affiliate=affiliate, campaign=campaign)
    query = urlencode({k: v for k, v in {"idfa": idfa, "sub1": sub1}.items() if v})
    client.get(f"/c/{link.code}?{query}", HTTP_USER_AGENT=IPHONE, REMOTE_ADDR=ip)
    made = Click.objects.latest("pk")
    Click.objects.filter(pk=made.pk).update(created_at=at)
    made.refresh_from_db()
    return made


def postback(client, source, **params) -> Conversion:
    """Send a postback over HTTP and run the worker's step on it."""
    if source.kind == "branch":
        response = client.post(
            f"/postbacks/branch/{source.token}/", params["json"], content_type="application/json"
        )
    else:
        response = client.get(f"/postbacks/{source.kind}/{source.token}/?{urlencode(params)}")
    assert response.status_code == 200, response.content
    single.postback_process(postback_id=response.json()["id"])
    return Conversion.objects.get(event__postback_id=response.json()["id"])


def af_install(client, source, *, at: datetime, click_id="", idfa=IDFA, afid="af-1", **extra):
    params = {
        "appsflyer_id": afid,
        "app_id": "id1234567890",
        "platform": "ios",
        "install_unix_ts": int(at.timestamp()),
        "clickid": click_id,
        "idfa": idfa,
        **extra,
    }
    return postback(client, source, **{k: v for k, v in params.items() if v != ""})


def test_an_install_with_our_click_id_credits_that_click(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)

    conversion = af_install(client, appsflyer, at=T0 + timedelta(hours=2), click_id=made.click_id)

    assert (conversion.affiliate, conversion.campaign, conversion.click) == (alice, campaign, made)
    assert conversion.method == "click_id"
    assert (conversion.status, conversion.reason) == ("approved", "ok")
    assert conversion.ctit_seconds == 7200
    assert (conversion.channel, conversion.platform, conversion.type) == (
        "mobile",
        "ios",
        "install",
    )


def test_without_a_click_id_the_devices_latest_click_for_the_app_is_credited(
    client, alice, charlie, campaign, appsflyer
):
    click(client, charlie, campaign, at=T0 - timedelta(days=1), idfa=IDFA)
    latest = click(client, alice, campaign, at=T0, idfa=IDFA)
    click(
        client,
        charlie,
        campaign,
        at=T0 - timedelta(hours=1),
        idfa="11111111-2222-3333-4444-555555555555",
    )

    conversion = af_install(client, appsflyer, at=T0 + timedelta(minutes=30))

    assert (conversion.affiliate, conversion.click, conversion.method) == (
        alice,
        latest,
        "device_id",
    )


def test_a_device_click_outside_the_lookback_is_not_credited(client, alice, campaign, appsflyer):
    click(client, alice, campaign, at=T0 - timedelta(days=8), idfa=IDFA)
    conversion = af_install(client, appsflyer, at=T0)
    assert (conversion.affiliate, conversion.reason, conversion.method) == (None, "organic", "none")


def test_an_install_without_any_touch_is_organic(client, campaign, appsflyer):
    conversion = af_install(client, appsflyer, at=T0)
    assert conversion.affiliate is None
    assert (conversion.status, conversion.reason) == ("approved", "organic")


def test_in_app_events_follow_the_install_through_the_mmp_device_id(
    client, alice, campaign, appsflyer
):
    made = click(client, alice, campaign, at=T0)
    af_install(client, appsflyer, at=T0 + timedelta(minutes=5), click_id=made.click_id)

    purchase = postback(
        client,
        appsflyer,
        appsflyer_id="af-1",
        event_name="af_purchase",
        event_revenue="4.99",
        event_revenue_currency="EUR",
        event_time="2026-11-05 10:00:00.000",
    )

    assert (purchase.affiliate, purchase.method, purchase.type) == (
        alice,
        "install_chain",
        "purchase",
    )
    assert purchase.revenue == Decimal("4.99")
    assert purchase.click == made


def test_web_registration_by_click_id_then_deposits_by_player_and_one_ftd(
    client, alice, campaign, s2s
):
    made = click(client, alice, campaign, at=T0)
    Click.objects.filter(pk=made.pk).update(platform="web")
    registration = postback(
        client,
        s2s,
        click_id=made.click_id,
        event="reg",
        txid="r1",
        player_id="p1",
        time=int((T0 + timedelta(minutes=3)).timestamp()),
    )
    first = postback(
        client,
        s2s,
        event="ftd",
        txid="d1",
        player_id="p1",
        amount="50.00",
        currency="EUR",
        time=int((T0 + timedelta(hours=1)).timestamp()),
    )
    second = postback(
        client,
        s2s,
        event="ftd",
        txid="d2",
        player_id="p1",
        amount="70.00",
        currency="EUR",
        time=int((T0 + timedelta(hours=2)).timestamp()),
    )

    assert (registration.affiliate, registration.method, registration.channel) == (
        alice,
        "click_id",
        "web",
    )
    assert (first.affiliate, first.method, first.status) == (alice, "install_chain", "approved")
    assert (second.status, second.reason, second.duplicate_of) == (
        "rejected",
        "duplicate_ftd",
        first,
    )


def test_the_same_install_from_two_mmps_is_one_conversion(
    client, alice, campaign, appsflyer, branch
):
    made = click(client, alice, campaign, at=T0)
    winner = af_install(client, appsflyer, at=T0 + timedelta(minutes=2), click_id=made.click_id)
    from_branch = postback(
        client,
        branch,
        json=json.dumps(
            {
                "name": "INSTALL",
                "id": "555",
                "timestamp": int((T0 + timedelta(minutes=2)).timestamp() * 1000),
                "user_data": {"idfa": IDFA, "os": "IOS"},
                "last_attributed_touch_data": {"click_id": made.click_id},
            }
        ),
    )

    assert (from_branch.status, from_branch.reason) == ("rejected", "duplicate_claim")
    assert from_branch.duplicate_of == winner
    assert Conversion.objects.filter(type="install", is_winner=True).count() == 1


@pytest.mark.parametrize("order", ["earlier-first", "later-first"])
def test_two_affiliates_claiming_one_install_the_last_click_wins(
    client, alice, charlie, campaign, appsflyer, branch, order
):
    early = click(client, charlie, campaign, at=T0)
    late = click(client, alice, campaign, at=T0 + timedelta(hours=1))
    installed = T0 + timedelta(hours=2)
    claims = [
        lambda: af_install(client, appsflyer, at=installed, click_id=early.click_id),
        lambda: af_install(client, appsflyer, at=installed, click_id=late.click_id, afid="af-2"),
    ]
    if order == "later-first":
        claims.reverse()
    for claim in claims:
        claim()

    winner = Conversion.objects.get(type="install", is_winner=True)
    loser = Conversion.objects.get(type="install", is_winner=False)
    assert winner.affiliate == alice
    assert (loser.affiliate, loser.status, loser.reason, loser.duplicate_of) == (
        charlie,
        "rejected",
        "duplicate_claim",
        winner,
    )


def test_a_first_click_campaign_credits_the_first_click(
    client, alice, charlie, campaign, appsflyer
):
    Campaign.objects.filter(pk=campaign.pk).update(attribution_model="first_click")
    early = click(client, charlie, campaign, at=T0)
    late = click(client, alice, campaign, at=T0 + timedelta(hours=1))
    installed = T0 + timedelta(hours=2)
    af_install(client, appsflyer, at=installed, click_id=late.click_id)
    af_install(client, appsflyer, at=installed, click_id=early.click_id, afid="af-2")
    assert Conversion.objects.get(type="install", is_winner=True).affiliate == charlie


# --- fraud rules -----------------------------------------------------------------------------


def test_an_install_seconds_after_the_click_is_held_as_click_injection_by_default(
    client, alice, campaign, appsflyer
):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(seconds=3), click_id=made.click_id)
    assert (conversion.status, conversion.reason) == ("pending", "low_ctit")
    assert "3 s" in conversion.detail


def test_a_campaign_may_reject_click_injection_outright(client, alice, campaign, appsflyer):
    FraudPolicy.objects.create(campaign=campaign, low_ctit_action="reject")
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(seconds=3), click_id=made.click_id)
    assert (conversion.status, conversion.reason) == ("rejected", "low_ctit")


def test_the_minimum_ctit_and_its_action_are_per_campaign(client, alice, campaign, appsflyer):
    FraudPolicy.objects.create(campaign=campaign, min_ctit_seconds=60, low_ctit_action="hold")
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(
        client, appsflyer, at=T0 + timedelta(seconds=30), click_id=made.click_id
    )
    assert (conversion.status, conversion.reason) == ("pending", "low_ctit")


def test_an_install_after_the_lookback_is_held_by_default(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(days=8), click_id=made.click_id)
    assert (conversion.affiliate, conversion.status, conversion.reason) == (
        alice,
        "pending",
        "outside_lookback",
    )


def test_an_install_before_its_click_is_rejected(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 - timedelta(hours=1), click_id=made.click_id)
    assert (conversion.status, conversion.reason) == ("rejected", "before_click")


def test_an_install_the_mmp_blocked_is_recorded_never_paid(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(
        client,
        appsflyer,
        at=T0 + timedelta(hours=1),
        click_id=made.click_id,
        blocked_reason="click_flood",
    )
    assert (conversion.status, conversion.reason) == ("rejected", "mmp_blocked")
    assert conversion.affiliate == alice


def test_click_flooding_holds_the_install_for_review(client, alice, campaign, appsflyer):
    FraudPolicy.objects.create(campaign=campaign, flood_clicks_per_install=5, flood_min_clicks=5)
    clicks = [click(client, alice, campaign, at=T0 + timedelta(minutes=n)) for n in range(8)]
    conversion = af_install(
        client, appsflyer, at=T0 + timedelta(hours=1), click_id=clicks[-1].click_id
    )
    assert (conversion.status, conversion.reason) == ("pending", "click_flooding")


def test_a_burst_of_installs_from_one_ip_is_held(client, alice, campaign, appsflyer):
    FraudPolicy.objects.create(campaign=campaign, burst_max_per_ip=2)
    results = []
    for n in range(4):
        made = click(client, alice, campaign, at=T0 + timedelta(minutes=n))
        results.append(
            af_install(
                client,
                appsflyer,
                at=T0 + timedelta(minutes=n, seconds=40),
                click_id=made.click_id,
                afid=f"af-{n}",
                idfa=f"00000000-0000-0000-0000-00000000000{n + 1}",
                ip="203.0.113.50",
            )
        )
    assert [(c.status, c.reason) for c in results] == [
        ("approved", "ok"),
        ("approved", "ok"),
        ("pending", "ip_burst"),
        ("pending", "ip_burst"),
    ]


def test_a_manager_approves_a_held_conversion_with_an_audit_row(client, alice, campaign, appsflyer):
    FraudPolicy.objects.create(campaign=campaign, low_ctit_action="hold")
    made = click(client, alice, campaign, at=T0)
    held = af_install(client, appsflyer, at=T0 + timedelta(seconds=2), click_id=made.click_id)
    manager = UserFactory(username="mgr", is_staff=True)

    amend.conversion_review(conversion=held, approve=True, actor=manager, note="checked logs")

    held.refresh_from_db()
    assert (held.status, held.reason) == ("approved", "manager")
    audit = AuditEvent.objects.get(object_id=str(held.pk))
    assert (audit.old, audit.new, audit.actor, audit.note) == (
        "pending/low_ctit",
        "approved/manager",
        manager,
        "checked logs",
    )


def test_a_manager_rejection_keeps_the_rules_reason(client, alice, campaign, appsflyer):
    FraudPolicy.objects.create(campaign=campaign, low_ctit_action="hold")
    made = click(client, alice, campaign, at=T0)
    held = af_install(client, appsflyer, at=T0 + timedelta(seconds=2), click_id=made.click_id)
    amend.conversion_review(conversion=held, approve=False, actor=None)
    held.refresh_from_db()
    assert (held.status, held.reason) == ("rejected", "low_ctit")


def test_the_operator_declining_a_deposit_rejects_it(client, alice, campaign, s2s):
    made = click(client, alice, campaign, at=T0)
    conversion = postback(
        client,
        s2s,
        click_id=made.click_id,
        event="ftd",
        txid="x1",
        amount="10",
        status="declined",
        time=int((T0 + timedelta(hours=1)).timestamp()),
    )
    assert (conversion.status, conversion.reason) == ("rejected", "declined")


def report(client, source, **params) -> dict:
    """Send a postback over HTTP, run the worker's step on it; the endpoint's answer."""
    response = client.get(f"/postbacks/{source.kind}/{source.token}/?{urlencode(params)}")
    assert response.status_code == 200, response.content
    single.postback_process(postback_id=response.json()["id"])
    return response.json()


def test_the_operators_later_reports_confirm_then_decline_a_deposit(client, alice, campaign, s2s):
    # given an FTD plan, and alice's player's first deposit that the operator reported pending
    plan(campaign, cpa={"ftd": "100.00"})
    made = click(client, alice, campaign, at=T0)
    Click.objects.filter(pk=made.pk).update(platform="web")
    deposit = {"event": "ftd", "txid": "d1", "player_id": "p1", "amount": "50.00",
               "currency": "EUR", "click_id": made.click_id,
               "time": int((T0 + timedelta(hours=1)).timestamp())}  # fmt: skip
    first = postback(client, s2s, **deposit, status="pending")
    assert (first.status, first.reason) == ("pending", "ok")

    # when the operator confirms it, sends the confirmation again, and later declines it
    report(client, s2s, **deposit, status="approved")
    first.refresh_from_db()
    confirmed = (first.status, first.reason)
    live_after_confirming = list(
        LedgerEntry.objects.filter(conversion=first, kind="cpa").values_list("status", "amount")
    )
    again = report(client, s2s, **deposit, status="approved")
    report(client, s2s, **deposit, status="declined")
    first.refresh_from_db()

    # then the one conversion followed each report, the repeat was a repeat, and the money
    # and the rollups followed, with an audit row for each change
    assert confirmed == ("approved", "ok")
    assert live_after_confirming == [("approved", Decimal("100.00"))]
    assert again["status"] == "duplicate"
    assert (first.status, first.reason) == ("rejected", "declined")
    assert Conversion.objects.filter(event__txid="d1").count() == 1
    assert PostbackEvent.objects.filter(txid="d1").count() == 3
    assert not LedgerEntry.objects.filter(
        conversion=first, kind="cpa", status__in=("pending", "approved", "paid")
    ).exists()
    row = DailyRollup.objects.get(currency="EUR")
    assert (row.ftds, row.deposit_amount, row.rejected) == (0, 0, 1)
    notes = list(
        AuditEvent.objects.filter(
            content_type__model="conversion", object_id=str(first.pk), field="status"
        )
        .order_by("pk")
        .values_list("new", "note")
    )
    assert notes == [
        ("approved/ok", "the operator reported approved (postback "
         f"{PostbackEvent.objects.filter(txid='d1', status='approved').get().postback_id})"),
        ("rejected/declined", "the operator reported declined (postback "
         f"{PostbackEvent.objects.filter(txid='d1', status='declined').get().postback_id})"),
    ]  # fmt: skip


def test_a_later_report_leaves_a_fraud_rules_decision_to_the_manager(
    client, alice, campaign, appsflyer, s2s
):
    # given a deposit held for review by a rule (a burst of deposits from one IP)
    FraudPolicy.objects.create(campaign=campaign, burst_max_per_ip=1)
    made = click(client, alice, campaign, at=T0)
    held = None
    for n in range(2):
        held = postback(client, s2s, event="deposit", txid=f"b{n}", click_id=made.click_id,
                        amount="5", ip="203.0.113.9",
                        time=int((T0 + timedelta(hours=1, minutes=n)).timestamp()))  # fmt: skip
    assert (held.status, held.reason) == ("pending", "ip_burst")

    # when the operator reports it approved
    report(client, s2s, event="deposit", txid="b1", click_id=made.click_id, amount="5",
           status="approved")  # fmt: skip

    # then the rule's hold stands: approving it is a manager's call
    held.refresh_from_db()
    assert (held.status, held.reason) == ("pending", "ip_burst")


# --- SKAdNetwork -------------------------------------------------------------------------------


def test_skan_installs_are_credited_in_aggregate_through_the_campaign_mapping(client, alice, app):
    vectors = json.loads(
        (Path(__file__).resolve().parent.parent / "fixtures" / "skan-test-vectors.json").read_text()
    )
    app.app_store_id = "525463029"
    app.skan_schema = {"60-63": "ftd"}
    app.save()
    campaign = CampaignFactory(ios_app=app)
    SkanMapping.objects.create(
        ad_network_id="com.example",
        source_identifier="5239",
        app=app,
        campaign=campaign,
        affiliate=alice,
    )
    response = client.post(
        "/.well-known/skadnetwork/report-attribution/",
        json.dumps(vectors[0]["postback"]),
        content_type="application/json",
    )
    single.postback_process(postback_id=response.json()["id"])

    conversion = Conversion.objects.get(event__postback_id=response.json()["id"])
    assert (conversion.affiliate, conversion.campaign, conversion.method) == (
        alice,
        campaign,
        "skan",
    )
    assert (conversion.type, conversion.status, conversion.skan_conversion_value) == (
        "install",
        "approved",
        63,
    )
    assert conversion.click is None and conversion.player_key == ""
    assert decide.decode_conversion_value(app, {"conversion_value": 61}) == "ftd"
    assert decide.decode_conversion_value(app, {"conversion_value": 10}) == ""


def test_processing_an_event_twice_never_makes_two_conversions(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)
    again = single.conversion_for_event(event=PostbackEvent.objects.get(pk=conversion.event_id))
    assert again == conversion
    assert Conversion.objects.count() == 1
    assert Identity.objects.filter(conversion=conversion).count() >= 2


def test_events_of_the_losing_mmp_follow_the_winning_install(
    client, alice, campaign, appsflyer, branch
):
    made = click(client, alice, campaign, at=T0)
    af_install(client, appsflyer, at=T0 + timedelta(minutes=2), click_id=made.click_id)
    postback(
        client,
        branch,
        json=json.dumps(
            {
                "name": "INSTALL",
                "id": "77",
                "timestamp": int((T0 + timedelta(minutes=3)).timestamp() * 1000),
                "user_data": {"idfa": IDFA, "developer_identity": "dev-1", "os": "IOS"},
            }
        ),
    )
    purchase = postback(
        client,
        branch,
        json=json.dumps(
            {
                "name": "PURCHASE",
                "id": "78",
                "timestamp": int((T0 + timedelta(days=1)).timestamp() * 1000),
                "user_data": {"developer_identity": "dev-1", "os": "IOS"},
                "event_data": {"revenue": 5, "currency": "EUR"},
            }
        ),
    )
    assert (purchase.affiliate, purchase.method) == (alice, "install_chain")


def test_a_blocked_install_without_a_click_is_rejected_not_organic(client, campaign, appsflyer):
    conversion = af_install(client, appsflyer, at=T0, blocked_reason="bots")
    assert (conversion.status, conversion.reason, conversion.detail) == (
        "rejected",
        "mmp_blocked",
        "bots",
    )


def test_an_event_that_arrived_before_its_install_is_credited_once_the_install_lands(
    client, alice, campaign, appsflyer
):
    made = click(client, alice, campaign, at=T0)
    early = postback(
        client,
        appsflyer,
        appsflyer_id="af-1",
        event_name="af_purchase",
        event_revenue="3",
        event_revenue_currency="EUR",
        event_time="2026-11-02 15:00:00.000",
    )
    assert early.reason == "organic"
    af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)
    early.refresh_from_db()
    assert (early.affiliate, early.method, early.status) == (alice, "install_chain", "approved")


def test_operator_events_without_a_time_still_chain_to_the_player(client, alice, campaign, s2s):
    made = click(client, alice, campaign, at=T0)
    Click.objects.filter(pk=made.pk).update(created_at=timezone.now() - timedelta(hours=1))
    registration = postback(
        client, s2s, click_id=made.click_id, event="reg", txid="r9", player_id="p9"
    )
    deposit = postback(
        client, s2s, event="ftd", txid="d9", player_id="p9", amount="30.00", currency="EUR"
    )
    assert registration.affiliate == alice
    assert (deposit.affiliate, deposit.method) == (alice, "install_chain")
