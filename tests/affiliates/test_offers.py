"""Offers (issue 17, point 1): what an affiliate may promote, on their own terms, and access to
approval-only and private campaigns, as a program manager would run it.

Expected terms are the plan a manager typed in (the figures below), never read back from the
code that shows them.
"""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.files.base import ContentFile
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from affiliates import offers
from affiliates.models import Campaign, CampaignAccess, Creative, NoticeKind, Notification
from attribution.models import Click
from payouts.models import (
    Cap,
    CapUsage,
    CommissionPlan,
    CpaRule,
    PlanAssignment,
    PlanVersion,
    Tier,
)
from tests.factories import CampaignFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

BROWSER = {"HTTP_USER_AGENT": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"}


def a_plan(name: str, *, ftd: str, min_deposit: str, revshare: str, hold: int) -> CommissionPlan:
    plan = CommissionPlan.objects.create(name=name, currency="EUR", hold_days=hold)
    version = PlanVersion.objects.create(
        plan=plan,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        revshare_percent=Decimal(revshare),
        revshare_basis="ngr",
        ngr_deductions=["bonuses"],
        admin_fee_percent=Decimal("10"),
        subaffiliate_percents=["5"],
    )
    CpaRule.objects.create(
        version=version,
        conversion_type="ftd",
        amount=Decimal(ftd),
        min_amount=Decimal(min_deposit),
    )
    Tier.objects.create(version=version, from_ftds=50, cpa_amount=Decimal("150.00"))
    return plan


def api_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def public(campaign):
    default = a_plan("Casino default", ftd="100.00", min_deposit="20.00", revshare="25", hold=30)
    PlanAssignment.objects.create(plan=default, campaign=campaign)
    return campaign


@pytest.fixture
def gated(app):
    return CampaignFactory(
        name="High rollers",
        brand=app.brand,
        visibility=Campaign.Visibility.APPROVAL,
        fallback_url="https://casino.example/other-offers",
    )


@pytest.fixture
def private(app):
    return CampaignFactory(name="VIP only", brand=app.brand, visibility=Campaign.Visibility.PRIVATE)


def test_an_affiliate_sees_the_terms_a_manager_set_for_them_and_others_the_default(
    client, alice, charlie, public
):
    # given: alice has a deal of her own on the campaign; charlie has the campaign's default
    own = a_plan("Alice's deal", ftd="180.00", min_deposit="50.00", revshare="35", hold=7)
    PlanAssignment.objects.create(plan=own, campaign=public, affiliate=alice)

    # when
    client.force_login(alice.user)
    mine = client.get("/dashboard/offers/").content.decode()
    client.force_login(charlie.user)
    theirs = client.get("/dashboard/offers/").content.decode()

    # then: each reads their own CPA, minimum deposit, RevShare and hold, not the other's
    assert "180.00 EUR" in mine and "minimum deposit 50.00 EUR" in mine and "35%" in mine
    assert "7 days" in mine and "100.00 EUR" not in mine
    assert "100.00 EUR" in theirs and "minimum deposit 20.00 EUR" in theirs and "25%" in theirs
    assert "30 days" in theirs and "180.00" not in theirs
    # the NGR formula, the tier and the sub-affiliate share, as the plan says
    assert "GGR - bonuses - admin fee 10% of GGR" in theirs
    assert "From FTD 50 a month" in theirs and "150.00 EUR" in theirs
    assert "Sub-affiliates, level 1" in theirs


def test_the_api_gives_the_same_terms_as_numbers(alice, public):
    answer = api_for(alice.user).get("/api/v1/offers/")

    assert answer.status_code == 200
    (offer,) = answer.json()
    assert (offer["campaign"], offer["access"], offer["can_link"]) == (public.pk, "open", True)
    terms = offer["terms"]
    assert terms["cpa"] == [
        {
            "event": "ftd",
            "label": "First-time deposit",
            "amount": "100.00",
            "min_deposit": "20.00",
            "countries": "",
            "platform": "",
            "channel": "",
        }
    ]
    assert (terms["revshare_percent"], terms["revshare_basis"], terms["hold_days"]) == (
        "25.00",
        "ngr",
        30,
    )
    assert terms["tiers"] == [{"from_ftds": 50, "cpa_amount": "150.00", "revshare_percent": None}]
    assert terms["subaffiliate_percents"] == ["5.00"]


def test_a_private_campaign_is_invisible_until_a_manager_lets_the_affiliate_in(
    client, alice, charlie, private, manager
):
    client.force_login(alice.user)
    assert "VIP only" not in client.get("/dashboard/offers/").content.decode()
    assert api_for(alice.user).get("/api/v1/offers/").json() == []
    assert client.post(f"/dashboard/offers/{private.pk}/request/").status_code == 404

    offers.access_grant(affiliate=alice, campaign=private, actor=manager)

    assert "VIP only" in client.get("/dashboard/offers/").content.decode()
    client.force_login(charlie.user)
    assert "VIP only" not in client.get("/dashboard/offers/").content.decode()


def test_request_approve_link_and_click(client, alice, manager, gated):
    client.force_login(alice.user)

    # before approval: listed, but no link can be made on it
    page = client.get("/dashboard/offers/").content.decode()
    assert "High rollers" in page and "Request access" in page
    refused = client.post("/dashboard/links/", {"campaign": gated.pk})
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    api = api_for(alice.user)
    assert api.post("/api/v1/links/", {"campaign": gated.pk}, format="json").status_code == 400

    # she asks; the managers hear of it
    answer = client.post(f"/dashboard/offers/{gated.pk}/request/", {"message": "SEO, DE"})
    assert answer.status_code == 302
    access = CampaignAccess.objects.get(affiliate=alice, campaign=gated)
    assert (access.status, access.message) == ("requested", "SEO, DE")
    assert Notification.objects.filter(user=manager, kind=NoticeKind.ACCESS_REQUEST).count() == 1
    assert "waiting for a manager" in client.get("/dashboard/offers/").content.decode()

    # a manager approves; she hears of it, and her link works
    offers.access_decide(access=access, approve=True, actor=manager)
    assert Notification.objects.filter(user=alice.user, kind=NoticeKind.ACCESS_ANSWERED).exists()
    made = api.post("/api/v1/links/", {"campaign": gated.pk}, format="json")
    assert made.status_code == 201, made.content
    redirect = client.get(f"/c/{made.json()['code']}", **BROWSER)
    assert redirect.status_code == 302
    assert Click.objects.filter(link_id=made.json()["id"]).count() == 1


def test_a_refusal_needs_a_reason_and_the_affiliate_reads_it(client, alice, manager, gated):
    access = offers.access_request(affiliate=alice, campaign=gated)

    with pytest.raises(offers.AccessRefused, match="Say why"):
        offers.access_decide(access=access, approve=False, reason="  ", actor=manager)
    offers.access_decide(access=access, approve=False, reason="no incentivised", actor=manager)

    client.force_login(alice.user)
    assert "Access refused: no incentivised" in client.get("/dashboard/offers/").content.decode()
    notice = Notification.objects.get(user=alice.user, kind=NoticeKind.ACCESS_ANSWERED)
    assert "refused" in notice.title and notice.body == "no incentivised"


def test_a_revoked_link_sends_visitors_to_the_fallback_and_records_no_click(
    client, alice, manager, gated
):
    # given: alice's approved access and a link that works (its lookup kept in this process)
    access = offers.access_grant(affiliate=alice, campaign=gated, actor=manager)
    link = TrackingLinkFactory(affiliate=alice, campaign=gated)
    assert client.get(f"/c/{link.code}", **BROWSER).status_code == 302
    assert Click.objects.count() == 1

    # when: the manager revokes it
    offers.access_decide(access=access, approve=False, reason="brand bidding", actor=manager)

    # then: the next visitor goes to the campaign's fallback, and nothing is recorded
    answer = client.get(f"/c/{link.code}", **BROWSER)
    assert (answer.status_code, answer["Location"]) == (302, "https://casino.example/other-offers")
    assert Click.objects.count() == 1
    access.refresh_from_db()
    assert access.status == "revoked"

    # without a fallback URL the link answers that it is gone
    gated.fallback_url = ""
    gated.save()
    assert client.get(f"/c/{link.code}", **BROWSER).status_code == 404
    assert Click.objects.count() == 1


def test_a_link_a_manager_makes_on_a_private_campaign_carries_its_access(alice, manager, private):
    made = api_for(manager).post(
        "/api/v1/links/", {"campaign": private.pk, "affiliate": alice.pk}, format="json"
    )

    assert made.status_code == 201, made.content
    assert CampaignAccess.objects.get(affiliate=alice, campaign=private).status == "approved"


def test_a_campaign_made_approval_only_keeps_its_affiliates_links(client, alice, public):
    link = TrackingLinkFactory(affiliate=alice, campaign=public)

    public.visibility = Campaign.Visibility.APPROVAL
    public.save()

    assert CampaignAccess.objects.get(affiliate=alice, campaign=public).status == "approved"
    assert client.get(f"/c/{link.code}", **BROWSER).status_code == 302


def test_asking_for_a_public_or_private_campaign_is_refused_plainly(alice, public, private):
    with pytest.raises(offers.AccessRefused, match="open to every affiliate"):
        offers.access_request(affiliate=alice, campaign=public)
    with pytest.raises(offers.AccessRefused, match="invitation only"):
        offers.access_request(affiliate=alice, campaign=private)
    assert not CampaignAccess.objects.exists()


def test_creatives_reach_only_affiliates_who_may_use_the_campaign(
    client, alice, charlie, manager, gated, settings, tmp_path
):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path)},
        },
    }
    banner = Creative(campaign=gated, kind="banner", name="300x250")
    banner.file.save("banner.png", ContentFile(b"\x89PNG not really"), save=True)
    offers.access_grant(affiliate=alice, campaign=gated, actor=manager)

    client.force_login(alice.user)
    answer = client.get(f"/dashboard/creatives/{banner.pk}/")
    assert answer.status_code == 200
    assert b"".join(answer.streaming_content) == b"\x89PNG not really"
    assert "300x250" in client.get("/dashboard/offers/").content.decode()

    client.force_login(charlie.user)
    assert client.get(f"/dashboard/creatives/{banner.pk}/").status_code == 404
    assert "300x250" not in client.get("/dashboard/offers/").content.decode()


def test_a_manager_answers_a_request_in_the_admin(manager_client, alice, gated, manager):
    access = offers.access_request(affiliate=alice, campaign=gated, message="email list")
    url = f"/admin/affiliates/campaignaccess/{access.pk}/change/"

    no_reason = manager_client.post(url, {"decision": "refuse", "reason": ""})
    assert no_reason.status_code == 200 and "Say why" in no_reason.content.decode()
    access.refresh_from_db()
    assert access.status == "requested"

    done = manager_client.post(url, {"decision": "approve", "reason": ""})
    assert done.status_code == 302
    access.refresh_from_db()
    assert (access.status, access.decided_by) == ("approved", manager)


@pytest.mark.parametrize("wanted", ["", "abc", "²", "9" * 30])
def test_a_manager_naming_no_real_affiliate_gets_a_400(manager, wanted):
    answer = api_for(manager).get("/api/v1/offers/", {"affiliate": wanted})

    assert answer.status_code == 400 and "affiliate" in answer.json()


@pytest.mark.parametrize("code", ["abc", "²", "9" * 30])
def test_asking_for_an_offer_that_is_no_id_is_a_404(alice, code):
    answer = api_for(alice.user).post(f"/api/v1/offers/{code}/request/", {}, format="json")

    assert answer.status_code == 404
    assert not CampaignAccess.objects.exists()


def test_an_offer_shows_its_caps_and_only_the_affiliates_own_usage(client, alice, charlie, public):
    # given a cap of 100 FTDs a month for the whole offer, reached; and 5 a day for alice alone,
    # 2 of them used today; and one for charlie, which alice must not see
    whole = Cap.objects.create(campaign=public, period="month", limit=100, action="hold")
    mine = Cap.objects.create(campaign=public, affiliate=alice, limit=5, action="unpaid")
    Cap.objects.create(campaign=public, affiliate=charlie, limit=7, action="unpaid")
    later = timezone.now() + timedelta(hours=1)
    CapUsage.objects.create(cap=whole, period_start=date(2026, 12, 1), ends_at=later,
                            conversions=100, reached_at=timezone.now())  # fmt: skip
    CapUsage.objects.create(cap=mine, period_start=date(2026, 12, 4), ends_at=later, conversions=2)

    client.force_login(alice.user)
    page = client.get("/dashboard/offers/").content.decode()
    (offer,) = api_for(alice.user).get("/api/v1/offers/").json()

    assert offer["caps"] == [
        {
            "limit": "100 First-time deposits a month for the whole offer",
            "past_it": "conversions past it wait for a manager's review",
            "reached": True,
            "used": "",  # the whole offer's count is other affiliates' volume too
        },
        {
            "limit": "5 First-time deposits a day for you",
            "past_it": "conversions past it are not paid",
            "reached": False,
            "used": "2 of 5",
        },
    ]
    assert "100 First-time deposits a month for the whole offer" in page
    assert "Reached for now." in page
    assert "(2 of 5 used)" in page
    assert " 7 First-time" not in page


def offers_on(page_html: str) -> list[int]:
    return [int(pk) for pk in re.findall(r'data-offer="(\d+)"', page_html)]


def test_many_offers_come_a_page_at_a_time_and_can_be_searched(client, alice, app, private):
    # given 45 open campaigns of one brand (and a private one the affiliate may not see)
    made = [CampaignFactory(name=f"Slots {n:02d}", brand=app.brand) for n in range(45)]
    made.append(CampaignFactory(name="Poker night", brand=app.brand))
    client.force_login(alice.user)
    visible = sorted(made, key=lambda c: (c.name, c.pk))

    # when the affiliate pages through the offers, 20 a page, by name
    pages = [client.get("/dashboard/offers/", {"page": n}) for n in (1, 2, 3)]

    # then each page holds the next 20, and all of them once
    assert [offers_on(p.content.decode()) for p in pages] == [
        [c.pk for c in visible[:20]],
        [c.pk for c in visible[20:40]],
        [c.pk for c in visible[40:]],
    ]
    assert "page 3 of 3 (46 offers)" in pages[2].content.decode()

    # and a search narrows them, by campaign or by brand; the private one is never found
    found = client.get("/dashboard/offers/", {"q": "poker"}).content.decode()
    assert offers_on(found) == [made[-1].pk]
    assert (
        len(offers_on(client.get("/dashboard/offers/", {"q": app.brand.name}).content.decode()))
        == 20
    )
    assert offers_on(client.get("/dashboard/offers/", {"q": "VIP"}).content.decode()) == []
    assert "No offer matches" in client.get("/dashboard/offers/", {"q": "VIP"}).content.decode()
