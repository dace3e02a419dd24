"""The affiliate's dashboard and pages: their own numbers, mobile beside web, nobody else's."""

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from affiliates.models import Affiliate
from attribution.models import Click, OutboundEndpoint
from attribution.rollups import keep
from tests.attribution.test_crediting import af_install, click, postback
from tests.factories import AffiliateFactory, CampaignFactory, TrackingLinkFactory, UserFactory

pytestmark = pytest.mark.django_db
NOW = timezone.now()
PAGES = [
    "affiliate-dashboard",
    "affiliate-conversions",
    "affiliate-links",
    "affiliate-payouts",
    "affiliate-subs",
    "affiliate-token",
    "affiliate-postbacks",
]


@pytest.fixture
def alices_month(client, alice, campaign, appsflyer, s2s):
    """Alice: two iOS installs (one with an FTD) and a web sign-up with a deposit, this week."""
    for n in range(2):
        made = click(
            client,
            alice,
            campaign,
            at=NOW - timedelta(days=2, minutes=n),
            ip=f"198.51.100.{n}",
            sub1="tiktok",
        )
        af_install(
            client,
            appsflyer,
            at=NOW - timedelta(days=2) + timedelta(hours=1),
            click_id=made.click_id,
            afid=f"af-{n}",
            idfa=f"00000000-0000-4000-8000-00000000000{n + 1}",
        )
    postback(
        client,
        appsflyer,
        appsflyer_id="af-0",
        event_name="af_first_deposit",
        event_revenue="40.00",
        event_revenue_currency="EUR",
        event_time=(NOW - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
    )
    web = click(client, alice, campaign, at=NOW - timedelta(days=3), ip="198.51.100.9", sub1="seo")
    Click.objects.filter(pk=web.pk).update(platform="web")
    postback(
        client,
        s2s,
        click_id=web.click_id,
        event="reg",
        txid="r1",
        player_id="p1",
        time=int((NOW - timedelta(days=3)).timestamp()) + 60,
    )
    postback(
        client,
        s2s,
        event="ftd",
        txid="f1",
        player_id="p1",
        amount="25.00",
        currency="EUR",
        time=int((NOW - timedelta(days=3)).timestamp()) + 120,
    )
    keep.clicks_fill(settle=timedelta(0))
    return alice


def cells(content: bytes, metric: str) -> dict[str, str]:
    """The summary table's row for a metric, as {column: text}."""
    import re

    row = re.search(rb'<tr data-metric="' + metric.encode() + rb'">(.*?)</tr>', content, re.S)
    return {
        m.group(1).decode(): m.group(2).decode().strip()
        for m in re.finditer(rb'data-column="(\w+)">([^<]*)<', row.group(1))
    }


def test_the_dashboard_puts_mobile_and_web_side_by_side(client, alices_month):
    client.force_login(alices_month.user)
    page = client.get(reverse("affiliate-dashboard"), {"period": "last7"})
    assert page.status_code == 200
    assert cells(page.content, "installs") == {
        "ios": "2",
        "android": "0",
        "skan": "0",
        "web": "0",
        "mobile": "2",
        "total": "2",
    }
    assert cells(page.content, "registrations")["web"] == "1"
    ftds = cells(page.content, "ftds")
    assert (ftds["ios"], ftds["web"], ftds["total"]) == ("1", "1", "2")
    assert cells(page.content, "deposit_amount")["total"] == "65.00"
    assert cells(page.content, "clicks")["total"] == "3"


def test_revenue_shows_what_the_operator_reported_and_no_empty_row(client, alices_month, appsflyer):
    # given a casino program: deposits reported (40.00 in the app, 25.00 on the web), no
    # in-app purchases
    client.force_login(alices_month.user)
    page = client.get(reverse("affiliate-dashboard"), {"period": "last7"})

    # then the revenue row is the deposits, and there is no row of purchase revenue at all
    assert b"Revenue: deposits" in page.content
    revenue = cells(page.content, "deposit_amount")
    assert (revenue["ios"], revenue["web"], revenue["total"]) == ("40.00", "25.00", "65.00")
    assert b'data-metric="revenue"' not in page.content

    # when the app reports a purchase, its revenue row appears with it
    postback(
        client,
        appsflyer,
        appsflyer_id="af-1",
        event_name="af_purchase",
        event_revenue="4.99",
        event_revenue_currency="EUR",
        event_time=(NOW - timedelta(hours=5)).strftime("%Y-%m-%d %H:%M:%S"),
    )
    page = client.get(reverse("affiliate-dashboard"), {"period": "last7"})
    assert cells(page.content, "revenue")["ios"] == "4.99"


def test_the_period_and_filters_change_the_numbers(client, alices_month):
    client.force_login(alices_month.user)
    today = client.get(reverse("affiliate-dashboard"), {"period": "today"})
    assert cells(today.content, "installs")["total"] == "0"
    web_only = client.get(reverse("affiliate-dashboard"), {"period": "last7", "channel": "web"})
    assert cells(web_only.content, "installs")["total"] == "0"
    assert cells(web_only.content, "registrations")["total"] == "1"
    bad = client.get(
        reverse("affiliate-dashboard"),
        {"period": "custom", "start": "2026-05-02", "end": "2026-05-01"},
    )
    assert b"before it starts" in bad.content


def test_every_table_exports_as_csv(client, alices_month):
    client.force_login(alices_month.user)
    base = reverse("affiliate-dashboard")
    summary = list(
        csv.reader(
            io.StringIO(client.get(base, {"period": "last7", "export": "summary"}).content.decode())
        )
    )
    assert summary[0][:3] == ["", "clicks", "unique_clicks"]
    assert summary[-1][0] == "Total" and summary[-1][3] == "2"  # installs
    daily = client.get(base, {"period": "last7", "export": "daily"})
    assert len(list(csv.reader(io.StringIO(daily.content.decode())))) == 8  # header + 7 days
    by_sub = list(
        csv.reader(
            io.StringIO(
                client.get(
                    base, {"period": "last7", "export": "breakdown", "by": "sub1"}
                ).content.decode()
            )
        )
    )
    assert {row[0] for row in by_sub[1:]} == {"tiktok", "seo"}
    conversions = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    reverse("affiliate-conversions"), {"period": "last7", "export": "csv"}
                ).content.decode()
            )
        )
    )
    assert sorted(c["type"] for c in conversions) == [
        "ftd",
        "ftd",
        "install",
        "install",
        "registration",
    ]
    assert all(c["status"] == "approved" and c["reason"] for c in conversions)


@pytest.mark.parametrize("name", PAGES)
def test_every_page_needs_a_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("name", PAGES)
def test_a_pending_affiliate_sees_the_application_status(client, name):
    pending = AffiliateFactory(status=Affiliate.Status.PENDING)
    client.force_login(pending.user)
    response = client.get(reverse(name))
    assert response.status_code == 403
    assert b"being reviewed" in response.content


def test_charlie_sees_none_of_alices_data_on_any_page_or_export(client, alices_month, charlie):
    alice = alices_month
    alice_link = alice.links.first()
    endpoint = OutboundEndpoint.objects.create(affiliate=alice, url_template="https://a.example/")
    own_campaign = CampaignFactory(name="Charlie's own")
    TrackingLinkFactory(affiliate=charlie, campaign=own_campaign)
    client.force_login(charlie.user)
    for name in PAGES:
        page = client.get(reverse(name), {"period": "last30"})
        assert page.status_code == 200, name
        assert alice_link.code.encode() not in page.content, name
        assert b"tiktok" not in page.content, name
        assert endpoint.url_template.encode() not in page.content, name
    dashboard = client.get(reverse("affiliate-dashboard"), {"period": "last30"})
    assert cells(dashboard.content, "installs")["total"] == "0"
    # naming alice's campaign in a filter is refused, not widened
    forced = client.get(
        reverse("affiliate-dashboard"), {"period": "last30", "campaign": alice_link.campaign_id}
    )
    assert forced.status_code == 400
    assert b"data-table" not in forced.content and b"correct the filters" in forced.content
    for export in ("summary", "daily", "breakdown"):
        body = client.get(
            reverse("affiliate-dashboard"), {"period": "last30", "export": export, "by": "sub1"}
        ).content
        assert b"tiktok" not in body and b",2," not in body.replace(b" ", b"")
    rows = list(
        csv.DictReader(
            io.StringIO(
                client.get(
                    reverse("affiliate-conversions"), {"period": "last30", "export": "csv"}
                ).content.decode()
            )
        )
    )
    assert rows == []
    # guessed ids
    assert client.post(reverse("affiliate-postback-delete", args=[endpoint.pk])).status_code == 404
    assert OutboundEndpoint.objects.filter(pk=endpoint.pk).exists()


def test_bob_the_sub_affiliate_sees_his_own_numbers_not_his_parents(client, alices_month):
    bob = AffiliateFactory(user=UserFactory(username="bob"), parent=alices_month)
    client.force_login(bob.user)
    page = client.get(reverse("affiliate-dashboard"), {"period": "last30"})
    assert cells(page.content, "installs")["total"] == "0"
    client.force_login(alices_month.user)
    subs = client.get(reverse("affiliate-subs"))
    assert bob.name.encode() in subs.content


def test_the_dashboard_reads_rollups_in_a_constant_number_of_queries(
    client, alice, campaign, django_assert_num_queries
):
    from attribution.models import DailyRollup

    client.force_login(alice.user)
    url = reverse("affiliate-dashboard")

    def counted(rows: int) -> int:
        DailyRollup.objects.all().delete()
        DailyRollup.objects.bulk_create(
            DailyRollup(
                day=(NOW - timedelta(days=n % 28)).date(),
                affiliate_id=alice.pk,
                campaign_id=campaign.pk,
                channel="mobile",
                platform="ios",
                country=f"{chr(65 + n % 26)}{chr(65 + n // 26)}",
                installs=n,
            )
            for n in range(rows)
        )
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as queries:
            assert client.get(url, {"period": "last30", "by": "country"}).status_code == 200
        return len(queries)

    assert counted(3) == counted(60)


def test_a_link_is_made_from_the_builder(client, alice, campaign):
    client.force_login(alice.user)
    response = client.post(
        reverse("affiliate-links"), {"campaign": campaign.pk, "name": "TikTok spring", "sub1": "tt"}
    )
    assert response.status_code == 302
    link = alice.links.get()
    assert (link.name, link.sub1, link.campaign) == ("TikTok spring", "tt", campaign)
    page = client.get(reverse("affiliate-links"))
    assert f"/c/{link.code}".encode() in page.content


def test_signing_up_waits_for_approval_and_a_referral_makes_a_sub_affiliate(client, alice):
    response = client.post(
        reverse("signup") + f"?ref={alice.referral_code}",
        {
            "username": "newbie",
            "email": "new@example.com",
            "password1": "a-Long-passw0rd!",
            "password2": "a-Long-passw0rd!",
            "name": "Newbie Media",
            "time_zone": "Europe/Malta",
            "currency": "EUR",
            "country": "MT",
            "website": "https://newbie.example",
            "ref": alice.referral_code,
        },
    )
    assert response.status_code == 302
    newbie = Affiliate.objects.get(user__username="newbie")
    assert (newbie.status, newbie.parent, newbie.time_zone) == ("pending", alice, "Europe/Malta")
    # the applicant logs in and waits for approval
    client.post(reverse("login"), {"username": "newbie", "password": "a-Long-passw0rd!"})
    assert client.get(reverse("affiliate-dashboard")).status_code == 403


def test_logins_are_throttled_after_repeated_failures(client, alice, settings):
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(3):
        client.post(
            reverse("login"), {"username": "alice", "password": "wrong"}, REMOTE_ADDR="203.0.113.5"
        )
    locked = client.post(
        reverse("login"),
        {"username": "alice", "password": "correct horse battery staple"},
        REMOTE_ADDR="203.0.113.5",
    )
    assert locked.status_code == 429
    assert b"Too many failed" in locked.content


def test_an_affiliate_can_make_and_replace_their_api_token(client, alice):
    client.force_login(alice.user)
    first = client.post(reverse("affiliate-token"))
    second = client.post(reverse("affiliate-token"))
    from rest_framework.authtoken.models import Token

    token = Token.objects.get(user=alice.user)
    assert token.key.encode() in second.content and token.key.encode() not in first.content


def test_dates_are_shown_in_the_affiliates_time_zone(client, alice, campaign, appsflyer):
    Affiliate.objects.filter(pk=alice.pk).update(time_zone="Asia/Tokyo")
    at = datetime.combine(NOW.date() - timedelta(days=1), datetime.min.time(), UTC)
    made = click(client, alice, campaign, at=at - timedelta(hours=1))
    af_install(
        client, appsflyer, at=at + timedelta(hours=20), click_id=made.click_id
    )  # 05:00 next day in Tokyo
    client.force_login(alice.user)
    page = client.get(reverse("affiliate-conversions"), {"period": "last7"})
    local = (at + timedelta(hours=29)).strftime("%Y-%m-%d 05:00")
    assert local.encode() in page.content


def test_an_imported_affiliate_without_a_password_can_set_one(client, mailoutbox):
    imported = AffiliateFactory(user=UserFactory(username="moved", email="moved@example.com"))
    imported.user.set_unusable_password()
    imported.user.save()
    client.post(reverse("password_reset"), {"email": "moved@example.com"})
    assert len(mailoutbox) == 1 and "moved" in mailoutbox[0].body
