"""Caps: a campaign (or one affiliate on it) never earns past its limit in a day, week or month.

Expected figures follow from the cap as a manager sets it (Everflow's "How To Manage Caps":
https://helpdesk.everflow.io/customer/how-to-manage-caps, a partner cap and an offer cap, the one
reached first wins; HasOffers' conversion cap: past it, traffic goes to the redirect offer):
with a daily cap of 3 FTDs at 100 EUR CPA, the 4th and 5th FTD of the day are not paid.
"""

import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.urls import reverse

from affiliates.models import AuditEvent, Notification
from attribution.models import Click, Conversion, FraudPolicy, Postback, SkippedClicks
from attribution.processing import amend, batch, single
from payouts.models import Cap, CapUsage, LedgerEntry
from tests.attribution.test_crediting import IPHONE, click, postback
from tests.factories import TrackingLinkFactory
from tests.payouts.helpers import convert, plan

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def cap(campaign, **fields) -> Cap:
    values = {"period": "day", "metric": "conversions", "conversion_type": "ftd", "limit": 3,
              "action": "hold", **fields}  # fmt: skip
    made = Cap(campaign=campaign, **values)
    made.full_clean()
    made.save()
    return made


def ftd(client, s2s, affiliate, campaign, n: int, *, at: datetime = DAY, process: bool = True):
    """Player ``n``'s first deposit after a click of ``affiliate``'s, sent by the operator."""
    made = click(client, affiliate, campaign, at=at - timedelta(minutes=30))
    Click.objects.filter(pk=made.pk).update(platform="web")
    query = {"event": "ftd", "txid": f"d{affiliate.pk}-{n}", "player_id": f"p{affiliate.pk}-{n}",
             "amount": "50.00", "currency": "EUR", "time": int(at.timestamp()),
             "click_id": made.click_id}  # fmt: skip
    if process:
        return postback(client, s2s, **query)
    response = client.get(f"/postbacks/s2s/{s2s.token}/", query)
    assert response.status_code == 200
    return response.json()["id"]


def paid(campaign) -> list[Decimal]:
    return list(
        LedgerEntry.objects.filter(kind="cpa", conversion__campaign=campaign)
        .order_by("conversion__occurred_at", "pk")
        .values_list("original_amount", flat=True)
    )


def test_a_daily_cap_holds_what_comes_past_it(client, alice, campaign, s2s):
    # given 100 EUR per FTD and a daily cap of 3 FTDs for the whole offer, held past it
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=3, action="hold")

    # when five FTDs of the same day arrive one after another
    made = [ftd(client, s2s, alice, campaign, n, at=DAY + timedelta(minutes=n)) for n in range(5)]

    # then three are credited and paid; the 4th and 5th wait for a manager, their entries pending
    made = Conversion.objects.filter(pk__in=[m.pk for m in made]).order_by("occurred_at")
    statuses = [(c.status, c.reason) for c in made]
    assert statuses == [("approved", "ok")] * 3 + [("pending", "over_cap")] * 2
    entries = LedgerEntry.objects.filter(kind="cpa").order_by("conversion__occurred_at")
    assert [(e.original_amount, e.status) for e in entries] == [
        (Decimal("100.00"), "approved")
    ] * 3 + [(Decimal("100.00"), "pending")] * 2
    usage = CapUsage.objects.get()
    assert (usage.conversions, usage.period_start) == (3, DAY.date())
    assert usage.reached_at is not None
    held = Conversion.objects.filter(reason="over_cap").first()
    assert "3 First-time deposits a day for the whole offer" in held.detail


def test_a_manager_approving_a_held_conversion_pays_it_and_the_cap_stays(
    client, alice, campaign, s2s, manager
):
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=1, action="hold")
    ftd(client, s2s, alice, campaign, 0)
    held = ftd(client, s2s, alice, campaign, 1, at=DAY + timedelta(minutes=5))
    assert (held.status, held.reason) == ("pending", "over_cap")

    amend.conversion_review(conversion=held, approve=True, actor=manager)

    entry = LedgerEntry.objects.get(conversion=held, kind="cpa")
    assert (entry.status, entry.original_amount) == ("approved", Decimal("100.00"))
    assert CapUsage.objects.get().conversions == 1  # the manager's decision is not counted


def test_a_fraud_rules_hold_keeps_its_code_when_a_cap_is_also_past(
    client, alice, campaign, s2s, manager
):
    # given a daily cap of 1 FTD (hold past it) and a rule holding a burst of deposits from one IP
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=1, action="hold")
    FraudPolicy.objects.create(campaign=campaign, burst_max_per_ip=1)
    made = []
    for n in range(2):
        made_click = click(client, alice, campaign, at=DAY - timedelta(minutes=30))
        made.append(postback(client, s2s, event="ftd", txid=f"ip{n}", player_id=f"ip-p{n}",
                             amount="50.00", currency="EUR", ip="203.0.113.9",
                             time=int((DAY + timedelta(minutes=n)).timestamp()),
                             click_id=made_click.click_id))  # fmt: skip

    # then the second, held by both, says the rule that held it, and the cap beside it
    held = Conversion.objects.get(pk=made[1].pk)
    assert (held.status, held.reason) == ("pending", "ip_burst")
    assert "2 ftds from 203.0.113.9" in held.detail and "past the cap" in held.detail

    # and a manager rejecting it rejects it for the rule's reason, not the cap's
    amend.conversion_review(conversion=held, approve=False, actor=manager)
    audit = AuditEvent.objects.filter(
        content_type=ContentType.objects.get_for_model(Conversion),
        object_id=str(held.pk),
        actor=manager,
    )
    assert list(audit.values_list("old", "new")) == [("pending/ip_burst", "rejected/ip_burst")]


def test_reaching_a_cap_tells_the_managers_and_the_affiliate_once_a_period(
    client, alice, charlie, campaign, s2s, manager
):
    # given alice's own cap of 2 FTDs a day (Berlin time), and one of 3 for the whole offer
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=2, affiliate=alice, action="unpaid", time_zone="Europe/Berlin")
    cap(campaign, limit=3, action="hold")

    # when alice brings 3 FTDs (her cap is reached by the 2nd) and charlie 1 (the offer's, 4th)
    for n in range(3):
        ftd(client, s2s, alice, campaign, n, at=DAY + timedelta(minutes=n))
    ftd(client, s2s, charlie, campaign, 0, at=DAY + timedelta(minutes=5))

    # then the manager heard of each cap once, as it was reached, and alice of her own only
    told = Notification.objects.filter(kind="cap_reached").order_by("pk")
    assert [(n.user, n.title) for n in told] == [
        (manager, f"Cap reached: {campaign.name}, 2 First-time deposits a day for {alice.name}"),
        (alice.user, f"Your cap on {campaign.name} is reached"),
        (manager, f"Cap reached: {campaign.name}, 3 First-time deposits a day for the whole offer"),
    ]
    # until midnight in the cap's own time zone (the FTDs came at 10:00 in Berlin)
    assert told[1].body == (
        "2 First-time deposits a day for you: conversions past it are not paid "
        "until 2026-11-03 00:00 (Europe/Berlin)."
    )
    assert told[0].url == reverse(
        "admin:payouts_cap_change", args=[Cap.objects.get(affiliate=alice).pk]
    )
    assert not told.filter(user=charlie.user).exists()


def test_the_operator_approving_a_held_deposit_does_not_release_it(client, alice, campaign, s2s):
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=1, action="hold")
    ftd(client, s2s, alice, campaign, 0)
    held = ftd(client, s2s, alice, campaign, 1, at=DAY + timedelta(minutes=5))

    # the operator's later report of the same transaction: approved
    later = int((DAY + timedelta(hours=1)).timestamp())
    report = {"event": "ftd", "txid": f"d{alice.pk}-1", "player_id": f"p{alice.pk}-1",
              "status": "approved", "time": later}  # fmt: skip
    response = client.get(f"/postbacks/s2s/{s2s.token}/", report)
    assert single.postback_process(postback_id=response.json()["id"]) == "processed"

    held.refresh_from_db()
    assert (held.status, held.reason) == ("pending", "over_cap")
    assert LedgerEntry.objects.get(conversion=held, kind="cpa").status == "pending"


def test_an_affiliate_cap_pays_nothing_past_it_and_leaves_others_alone(
    client, alice, charlie, campaign, s2s
):
    # given a cap of 2 FTDs a day on alice only, credited but unpaid past it
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, affiliate=alice, limit=2, action="unpaid")

    for n in range(3):
        ftd(client, s2s, alice, campaign, n, at=DAY + timedelta(minutes=n))
        ftd(client, s2s, charlie, campaign, n, at=DAY + timedelta(minutes=n))

    # then alice's third FTD is approved (it happened) but earns 0; charlie's all earn 100
    mine = LedgerEntry.objects.filter(kind="cpa", beneficiary=alice)
    mine = mine.order_by("conversion__occurred_at")
    assert [e.original_amount for e in mine] == [Decimal("100.00")] * 2 + [Decimal("0.00")]
    third = mine.last().conversion
    assert (third.status, third.reason) == ("approved", "over_cap")
    assert third.public_reason.label == "approved: past the offer's cap, not paid"
    theirs = LedgerEntry.objects.filter(kind="cpa", beneficiary=charlie)
    assert sorted(e.original_amount for e in theirs) == [Decimal("100.00")] * 3


def test_the_next_day_in_the_caps_time_zone_starts_afresh(client, alice, campaign, s2s):
    # given a daily cap of 1 counted in Malta (UTC+1 in November)
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=1, action="unpaid", time_zone="Europe/Malta")

    # an FTD at 22:30 UTC on 2 Nov (23:30 in Malta) and one at 23:30 UTC (00:30 on 3 Nov there)
    late = datetime(2026, 11, 2, 22, 30, tzinfo=UTC)
    ftd(client, s2s, alice, campaign, 0, at=late)
    ftd(client, s2s, alice, campaign, 1, at=late + timedelta(hours=1))

    # then both are paid: two days in Malta
    assert paid(campaign) == [Decimal("100.00")] * 2
    assert sorted(CapUsage.objects.values_list("period_start", flat=True)) == [
        datetime(2026, 11, 2).date(),
        datetime(2026, 11, 3).date(),
    ]


def test_a_payout_cap_pays_up_to_the_amount_and_not_a_cent_more(client, alice, campaign, s2s):
    # given 100 EUR per FTD and 250 EUR of commission a month for the offer, unpaid past it
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, period="month", metric="payout", limit="250.00", currency="EUR", action="unpaid")

    for n in range(4):
        ftd(client, s2s, alice, campaign, n, at=DAY + timedelta(days=n))

    # then 100 + 100 + 50 (what room was left) + 0: exactly 250 EUR
    assert paid(campaign) == [Decimal(a) for a in ("100.00", "100.00", "50.00", "0.00")]
    cut = LedgerEntry.objects.get(kind="cpa", original_amount=Decimal("50.00"))
    assert "cut to the room left under the cap" in cut.note
    assert CapUsage.objects.get().amount == Decimal("250.00")


@pytest.mark.postgres
def test_a_batch_of_the_worker_counts_the_cap_like_one_at_a_time(client, alice, campaign, s2s):
    # given 6 FTDs waiting in the inbox, and a cap of 4 a day
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=4, action="unpaid")
    ids = [ftd(client, s2s, alice, campaign, n, at=DAY + timedelta(minutes=n), process=False)
           for n in range(6)]  # fmt: skip

    # when the worker takes them as one batch
    assert batch.postbacks_attribute(ids) == {"processed": 6}

    # then four are paid and two are not, in the order they happened
    assert paid(campaign) == [Decimal("100.00")] * 4 + [Decimal("0.00")] * 2
    assert Conversion.objects.filter(reason="over_cap", status="approved").count() == 2
    assert not Postback.objects.exclude(status="processed").exists()


def test_a_reached_fallback_cap_sends_new_clicks_to_the_fallback(client, alice, campaign, s2s):
    # given a daily cap of 1 FTD whose action is to send clicks elsewhere
    campaign.fallback_url = "https://other.example/offer?src={affiliate_id}"
    campaign.save()
    plan(campaign, cpa={"ftd": "100.00"})
    cap(campaign, limit=1, action="fallback")
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    now = datetime.now(UTC)

    # before the cap is reached a click goes to the app
    before = client.get(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)
    assert before["Location"].startswith("https://app.appsflyer.com/")

    # when today's FTD reaches it
    ftd(client, s2s, alice, campaign, 0, at=now - timedelta(minutes=1))
    clicks = Click.objects.count()
    after = client.get(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)

    # then the next visitor goes to the fallback, counted as capped, with no click recorded
    assert after.status_code == 302
    assert after["Location"] == f"https://other.example/offer?src={alice.pk}"
    assert Click.objects.count() == clicks
    from attribution.clicks.visitors import tally

    tally.flush()
    assert SkippedClicks.objects.get(reason="capped").count == 1

    # and once the period is over the link sends traffic to the offer again
    CapUsage.objects.update(ends_at=now - timedelta(seconds=1))
    from attribution.clicks import targets

    targets.links_forget()
    again = client.get(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)
    assert again["Location"].startswith("https://app.appsflyer.com/")


def test_a_fallback_cap_needs_a_fallback_url(campaign):
    with pytest.raises(Exception, match="no fallback URL"):
        cap(campaign, action="fallback")


def test_the_caps_admin_shows_what_is_used(client, alice, campaign, s2s, manager_client):
    plan(campaign, cpa={"ftd": "100.00"})
    made = cap(campaign, limit=3, action="hold")
    ftd(client, s2s, alice, campaign, 0, at=datetime.now(UTC) - timedelta(minutes=1))

    page = manager_client.get(reverse("admin:payouts_cap_changelist"))

    assert page.status_code == 200
    assert "1 / 3" in page.content.decode()
    assert (
        manager_client.get(reverse("admin:payouts_cap_change", args=[made.pk])).status_code == 200
    )


class Accruing(threading.Thread):
    """Another worker: accrues a conversion in its own transaction and commits a moment later."""

    def __init__(self, affiliate, campaign) -> None:
        super().__init__(daemon=True)
        self.affiliate, self.campaign = affiliate, campaign
        self.counted = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                convert(self.affiliate, self.campaign, type="registration", amount=None)
                self.counted.set()
                time.sleep(1.0)
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.counted.set()
            connection.close()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_waits_for_the_first_ones_count(alice, charlie, campaign):
    # given a cap of 2 registrations a day (CPA 10 EUR), one taken and committed, and another
    # worker that has just taken the second, not yet committed
    plan(campaign, cpa={"registration": "10.00"})
    cap(campaign, conversion_type="registration", limit=2, action="unpaid")
    convert(charlie, campaign, type="registration", amount=None)
    other = Accruing(charlie, campaign)
    other.start()
    assert other.counted.wait(10)

    # when this worker accrues a registration of another affiliate meanwhile
    mine = convert(alice, campaign, type="registration", amount=None)

    # then it waited for the other's commit and found the cap reached: nothing paid
    other.join(10)
    assert other.error is None
    assert LedgerEntry.objects.get(conversion=mine).original_amount == Decimal("0.00")
    theirs = LedgerEntry.objects.filter(beneficiary=charlie).values_list(
        "original_amount", flat=True
    )
    assert list(theirs) == [Decimal("10.00")] * 2
    assert CapUsage.objects.get().conversions == 2
