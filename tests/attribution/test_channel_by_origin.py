"""Channel and platform by the player's origin: the operator's backend reports a registration or
deposit from its server, but the player came through an app install or a web click."""

import importlib
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import pytest
from django.apps import apps as django_apps
from django.db.models import Sum

from attribution.models import Click, Conversion, DailyRollup
from attribution.processing import single
from attribution.rollups import keep
from tests.factories import TrackingLinkFactory

pytestmark = pytest.mark.django_db

IDFA = "8C6CBC0D-5F43-4765-A6E6-84DFF3D24707"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148"
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


def click(client, affiliate, campaign, *, user_agent: str, idfa: str = "") -> Click:
    link = TrackingLinkFactory(affiliate=affiliate, campaign=campaign)
    query = f"?{urlencode({'idfa': idfa})}" if idfa else ""
    client.get(f"/c/{link.code}{query}", HTTP_USER_AGENT=user_agent, REMOTE_ADDR="198.51.100.7")
    made = Click.objects.latest("pk")
    Click.objects.filter(pk=made.pk).update(created_at=T0)
    made.refresh_from_db()
    return made


def postback(client, source, **params) -> Conversion:
    """Send a postback over HTTP and run the worker's step on it."""
    response = client.get(f"/postbacks/{source.kind}/{source.token}/?{urlencode(params)}")
    assert response.status_code == 200, response.content
    single.postback_process(postback_id=response.json()["id"])
    return Conversion.objects.get(event__postback_id=response.json()["id"])


def at(minutes: int) -> int:
    return int((T0 + timedelta(minutes=minutes)).timestamp())


def counted(affiliate, metric: str) -> dict[tuple[str, str], int]:
    """The affiliate's rollup counts of ``metric`` per (channel, platform), zeros left out."""
    rows = (
        DailyRollup.objects.filter(affiliate_id=affiliate.pk)
        .values("channel", "platform")
        .annotate(n=Sum(metric))
    )
    return {(r["channel"], r["platform"]): r["n"] for r in rows if r["n"]}


def test_an_s2s_registration_and_ftd_after_an_ios_install_count_as_mobile_ios(
    client, alice, campaign, appsflyer, s2s
):
    # given an iPhone click and the app's install, reported by AppsFlyer
    made = click(client, alice, campaign, user_agent=IPHONE)
    install = postback(
        client,
        appsflyer,
        appsflyer_id="af-1",
        app_id="id1234567890",
        platform="ios",
        install_unix_ts=at(5),
        clickid=made.click_id,
        idfa=IDFA,
    )
    assert (install.channel, install.platform) == ("mobile", "ios")

    # when the operator's backend reports the player's registration (with the click id the app
    # handed over) and first deposit (by player id only), with no platform of its own
    registration = postback(
        client, s2s, event="reg", txid="r1", click_id=made.click_id, player_id="p1", time=at(20)
    )
    ftd = postback(
        client,
        s2s,
        event="ftd",
        txid="d1",
        player_id="p1",
        amount="50",
        currency="EUR",
        time=at(90),
    )

    # then both belong to the player's origin: mobile, iOS, in the conversions and the rollups
    assert (registration.affiliate, registration.method) == (alice, "click_id")
    assert (ftd.affiliate, ftd.method) == (alice, "install_chain")
    assert (registration.channel, registration.platform) == ("mobile", "ios")
    assert (ftd.channel, ftd.platform) == ("mobile", "ios")
    assert counted(alice, "registrations") == {("mobile", "ios"): 1}
    assert counted(alice, "ftds") == {("mobile", "ios"): 1}


def test_an_s2s_event_chained_through_the_devices_install_takes_the_installs_platform(
    client, alice, campaign, appsflyer, s2s
):
    # given an install credited by click id; the operator says "web" (its server's default)
    made = click(client, alice, campaign, user_agent=IPHONE)
    postback(
        client,
        appsflyer,
        appsflyer_id="af-1",
        app_id="id1234567890",
        platform="ios",
        install_unix_ts=at(5),
        clickid=made.click_id,
        idfa=IDFA,
    )

    # when the registration names the device only, and says platform=web
    registration = postback(
        client, s2s, event="reg", txid="r1", idfa=IDFA, player_id="p1", platform="web", time=at(9)
    )

    # then the install the chain credits it through decides: iOS
    assert (registration.method, registration.channel, registration.platform) == (
        "install_chain",
        "mobile",
        "ios",
    )


def test_an_s2s_registration_and_ftd_after_a_web_click_count_as_web(client, alice, campaign, s2s):
    # given a desktop click on the campaign's web landing page
    made = click(client, alice, campaign, user_agent=DESKTOP)
    assert made.platform == "web"

    # when the operator reports the registration and first deposit
    registration = postback(
        client, s2s, event="reg", txid="r1", click_id=made.click_id, player_id="p1", time=at(3)
    )
    ftd = postback(
        client,
        s2s,
        event="ftd",
        txid="d1",
        player_id="p1",
        amount="50",
        currency="EUR",
        time=at(60),
    )

    # then both are web
    assert (registration.channel, registration.platform) == ("web", "web")
    assert (ftd.channel, ftd.platform) == ("web", "web")
    assert counted(alice, "registrations") == {("web", "web"): 1}
    assert counted(alice, "ftds") == {("web", "web"): 1}


def test_without_an_origin_the_operators_platform_parameter_decides_else_web(client, s2s):
    android = postback(client, s2s, event="reg", txid="r1", player_id="p1", platform="android")
    unknown = postback(client, s2s, event="reg", txid="r2", player_id="p2")

    assert (android.affiliate, android.channel, android.platform) == (None, "mobile", "android")
    assert (unknown.affiliate, unknown.channel, unknown.platform) == (None, "web", "web")


def test_the_data_migration_moves_earlier_s2s_conversions_to_their_origins_platform(
    client, alice, campaign, appsflyer, s2s
):
    # given an iOS player whose s2s registration and FTD were stored web, rollups and all, as
    # they were before the rule
    made = click(client, alice, campaign, user_agent=IPHONE)
    postback(
        client,
        appsflyer,
        appsflyer_id="af-1",
        app_id="id1234567890",
        platform="ios",
        install_unix_ts=at(5),
        clickid=made.click_id,
        idfa=IDFA,
    )
    registration = postback(
        client, s2s, event="reg", txid="r1", click_id=made.click_id, player_id="p1", time=at(20)
    )
    ftd = postback(
        client,
        s2s,
        event="ftd",
        txid="d1",
        player_id="p1",
        amount="50",
        currency="EUR",
        time=at(90),
    )
    Conversion.objects.filter(pk__in=[registration.pk, ftd.pk]).update(
        channel="web", platform="web"
    )
    keep.rebuild(since=T0.date(), until=T0.date())
    assert counted(alice, "ftds") == {("web", "web"): 1}

    # when the migration runs
    by_origin = importlib.import_module("attribution.migrations.0011_conversion_platform_by_origin")
    by_origin.forwards(django_apps, None)

    # then the conversions and their rollups are iOS
    registration.refresh_from_db()
    ftd.refresh_from_db()
    assert (registration.channel, registration.platform) == ("mobile", "ios")
    assert (ftd.channel, ftd.platform) == ("mobile", "ios")
    assert counted(alice, "registrations") == {("mobile", "ios"): 1}
    assert counted(alice, "ftds") == {("mobile", "ios"): 1}
    assert counted(alice, "installs") == {("mobile", "ios"): 1}
