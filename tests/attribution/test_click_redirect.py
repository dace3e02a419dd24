from urllib.parse import parse_qs, urlsplit

import pytest
from django.utils import timezone
from ulid import ULID

from affiliates.models import Affiliate, Campaign
from attribution.clicks import visitors
from attribution.models import SUB_MAX, USER_AGENT_MAX, Click, SkippedClicks
from tests.factories import AppFactory, CampaignFactory, TrackingLinkFactory
from tests.wsgi_client import WsgiClient

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


@pytest.fixture(params=["wsgi", "django"])
def client(request, client):
    """Each test twice: through the deployed WSGI application (the click fast path in front of
    Django, as gunicorn serves it) and through Django's handler (the view)."""
    return WsgiClient() if request.param == "wsgi" else client


@pytest.fixture
def link(alice):
    return TrackingLinkFactory(affiliate=alice, sub2="default-two")


def query(response) -> dict[str, list[str]]:
    return parse_qs(urlsplit(response["Location"]).query)


@pytest.mark.django_db
def test_it_records_the_click_and_redirects_with_its_id(client, link):
    response = client.get(f"/c/{link.code}?sub1=fb&sub3=x%20y", HTTP_USER_AGENT=DESKTOP)

    assert response.status_code == 302
    click = Click.objects.get()
    assert ULID.from_str(click.click_id)  # a real ULID
    params = query(response)
    assert params["cid"] == [click.click_id]
    assert params["a"] == [str(link.affiliate_id)]
    assert params["c"] == [str(link.campaign_id)]
    assert params["s1"] == ["fb"]
    assert (click.affiliate_id, click.campaign_id, click.link_id) == (
        link.affiliate_id,
        link.campaign_id,
        link.pk,
    )
    assert (click.sub1, click.sub2, click.sub3) == ("fb", "default-two", "x y")
    assert click.platform == "web"
    assert click.ip == "127.0.0.1"
    assert response["Cache-Control"] == "no-store"


@pytest.mark.django_db
def test_every_click_gets_its_own_time_sortable_id(client, link):
    for _ in range(5):
        client.get(f"/c/{link.code}")
    ids = list(Click.objects.order_by("id").values_list("click_id", flat=True))
    assert len(set(ids)) == 5
    assert ids == sorted(ids)


@pytest.mark.django_db
def test_macro_values_are_url_encoded(client, link):
    response = client.get(f"/c/{link.code}", {"sub1": "a&b=c d/é"})
    location = response["Location"]
    assert "s1=a%26b%3Dc%20d%2F%C3%A9" in location
    assert query(response)["s1"] == ["a&b=c d/é"]


@pytest.mark.django_db
def test_it_sends_each_platform_to_its_own_destination(client, alice):
    campaign = CampaignFactory(
        ios_app=AppFactory(platform="ios"),
        ios_url="https://apps.apple.com/app/id1234567890?ct={click_id}",
        android_app=AppFactory(platform="android"),
        android_url="https://play.google.com/store/apps/details?id=com.x&referrer={click_id}",
    )
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)

    ios = client.get(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)
    android = client.get(f"/c/{link.code}", HTTP_USER_AGENT=ANDROID)
    web = client.get(f"/c/{link.code}", HTTP_USER_AGENT=DESKTOP)

    assert ios["Location"].startswith("https://apps.apple.com/")
    assert android["Location"].startswith("https://play.google.com/")
    assert web["Location"].startswith("https://casino.example/")
    platforms = dict(Click.objects.values_list("click_id", "platform"))
    assert platforms[query(ios)["ct"][0]] == "ios"
    assert platforms[query(android)["referrer"][0]] == "android"


@pytest.mark.django_db
def test_a_platform_without_a_destination_falls_back_to_the_web_one(client, link):
    response = client.get(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)
    assert response["Location"].startswith("https://casino.example/")
    assert Click.objects.get().platform == "ios"


@pytest.mark.django_db
def test_an_appsflyer_link_gets_the_partner_parameters(client, alice, settings):
    settings.APPSFLYER_PID = "portal_int"
    campaign = CampaignFactory(
        name="Spring iOS", ios_url="https://app.appsflyer.com/id1234567890", click_lookback_days=3
    )
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign, sub1="s-one")
    idfa = "8c6cbc0d-5f43-4765-a6e6-84dff3d24707"

    response = client.get(f"/c/{link.code}?idfa={idfa}", HTTP_USER_AGENT=IPHONE)

    params = query(response)
    click = Click.objects.get()
    assert params["clickid"] == [click.click_id]
    assert params["af_siteid"] == [str(alice.pk)]
    assert params["pid"] == ["portal_int"]
    assert params["c"] == ["Spring iOS"]
    assert params["af_click_lookback"] == ["3d"]
    assert params["af_sub1"] == ["s-one"]
    assert params["idfa"] == [idfa.upper()]
    assert click.idfa == idfa.upper()


@pytest.mark.django_db
def test_an_appsflyer_link_keeps_what_its_template_already_set(client, alice):
    campaign = CampaignFactory(
        ios_url="https://go.onelink.me/abcd?pid=custom_pid&clickid={click_id}&c=my+campaign"
    )
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    response = client.get(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)
    params = query(response)
    assert params["pid"] == ["custom_pid"]
    assert params["c"] == ["my campaign"]
    assert params["clickid"] == [Click.objects.get().click_id]


@pytest.mark.django_db
def test_an_adjust_link_carries_the_click_id_on_its_callbacks(client, alice):
    callback = "https%3A%2F%2Fportal.example%2Fpostbacks%2Fadjust%2Ftok%2F%3Fsrc%3Dadj"
    campaign = CampaignFactory(
        android_url=f"https://app.adjust.com/abc123?install_callback={callback}"
        f"&event_callback_x1y2z3={callback}&campaign=spring"
    )
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"

    response = client.get(f"/c/{link.code}?gaid={gaid}", HTTP_USER_AGENT=ANDROID)

    params = query(response)
    click = Click.objects.get()
    for name in ("install_callback", "event_callback_x1y2z3"):
        callback_url = urlsplit(params[name][0])
        assert callback_url.netloc == "portal.example"
        assert parse_qs(callback_url.query) == {"src": ["adj"], "click_id": [click.click_id]}
    assert params["campaign"] == ["spring"]
    assert params["gps_adid"] == [gaid]
    assert click.gaid == gaid


@pytest.mark.django_db
def test_an_unknown_code_is_a_clear_404_page(client):
    response = client.get("/c/does-not-exist")
    assert response.status_code == 404
    assert b"This link is not active" in response.content
    assert Click.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    "breakage",
    [
        lambda link: setattr(link, "is_active", False) or link.save(),
        lambda link: Campaign.objects.filter(pk=link.campaign_id).update(status="paused"),
        lambda link: Affiliate.objects.filter(pk=link.affiliate_id).update(status="suspended"),
        lambda link: Affiliate.objects.filter(pk=link.affiliate_id).update(status="pending"),
    ],
    ids=["link-paused", "campaign-paused", "affiliate-suspended", "affiliate-pending"],
)
def test_a_paused_link_is_a_404_and_records_nothing(client, link, breakage):
    breakage(link)
    response = client.get(f"/c/{link.code}")
    assert response.status_code == 404
    assert Click.objects.count() == 0


@pytest.mark.django_db
def test_a_10kb_sub_id_is_cut_and_stored_safely(client, link):
    huge = "x" * 10_240
    response = client.get(f"/c/{link.code}", {"sub1": huge, "sub5": "y" * 10_240})
    assert response.status_code == 302
    click = Click.objects.get()
    assert click.sub1 == "x" * SUB_MAX
    assert click.sub5 == "y" * SUB_MAX


@pytest.mark.django_db
@pytest.mark.parametrize(
    "user_agent",
    ["", "\x00\x01\x02", "é" * 5000, "() { :; }; /bin/bash -c 'x'", "\ud800"[:0]],
    ids=["empty", "control-chars", "5000-unicode", "shellshock", "blank"],
)
def test_odd_user_agents_are_cut_and_cleaned(client, link, user_agent):
    response = client.get(f"/c/{link.code}", HTTP_USER_AGENT=user_agent)
    assert response.status_code == 302
    click = Click.objects.get()
    assert len(click.user_agent) <= USER_AGENT_MAX
    assert "\x00" not in click.user_agent
    assert click.platform == "web"


@pytest.mark.django_db
def test_a_missing_user_agent_is_a_web_click(client, link):
    response = client.get(f"/c/{link.code}")
    assert response.status_code == 302
    assert Click.objects.get().user_agent == ""


@pytest.mark.django_db
def test_control_characters_in_sub_ids_are_dropped(client, link):
    client.get(f"/c/{link.code}", {"sub1": "a\x00b\nc"})
    assert Click.objects.get().sub1 == "abc"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value",
    ["not-a-uuid", "'; DROP TABLE clicks; --", "0" * 100, "00000000-0000-0000-0000-000000000000"],
)
def test_an_invalid_or_zeroed_gaid_is_not_stored(client, link, value):
    response = client.get(f"/c/{link.code}", {"gaid": value, "idfa": value})
    assert response.status_code == 302
    click = Click.objects.get()
    assert (click.gaid, click.idfa) == ("", "")


@pytest.mark.django_db
def test_the_country_comes_from_the_cdn_header(client, link):
    client.get(f"/c/{link.code}", HTTP_CF_IPCOUNTRY="de")
    client.get(f"/c/{link.code}", HTTP_CF_IPCOUNTRY="XX1")
    assert sorted(Click.objects.values_list("country", flat=True)) == ["", "DE"]


@pytest.mark.django_db
def test_a_huge_code_is_a_404(client):
    assert client.get("/c/" + "a" * 5000).status_code == 404


@pytest.mark.django_db
def test_a_post_to_a_link_is_refused(client, link):
    assert client.post(f"/c/{link.code}").status_code == 405
    assert Click.objects.count() == 0


@pytest.mark.django_db
def test_the_redirect_does_one_insert_and_reads_its_link_once(
    client, link, django_assert_num_queries
):
    with django_assert_num_queries(2):  # the link, the click
        client.get(f"/c/{link.code}")
    with django_assert_num_queries(1):  # the click: the link is kept for a few seconds
        client.get(f"/c/{link.code}")


# User agents as their owners document them: api.slack.com/robots,
# developers.facebook.com/docs/sharing/webmasters/web-crawlers,
# developers.google.com/search/docs/crawling-indexing/overview-google-crawlers,
# developer.x.com (Cards: Twitterbot), core.telegram.org (link previews), LinkedIn's
# "LinkedInBot" (linkedin.com/help: sharing), Discord's embeds, and two HTTP tools.
BOTS = {
    "slackbot": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
    "facebookexternalhit": (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"
    ),
    "googlebot": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "googlebot-smartphone": (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 "
        "(compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    ),
    "twitterbot": "Twitterbot/1.0",
    "telegram": "TelegramBot (like TwitterBot)",
    "whatsapp": "WhatsApp/2.23.20.0",
    "linkedin": "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)",
    "discord": "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
    "curl": "curl/8.5.0",
    "python-requests": "python-requests/2.32.3",
}
BROWSERS = {
    "iphone-safari": IPHONE,
    "android-chrome": ANDROID,
    "desktop-chrome": DESKTOP,
    "facebook-in-app": (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/470.0.0.40.99;FBBV/614433281]"
    ),
    "instagram-in-app": (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.71 Mobile Safari/537.36 "
        "Instagram 339.0.0.34.120 Android"
    ),
    "firefox": "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
}


def skipped() -> dict[tuple[int, str], int]:
    return {(s.link_id, s.reason): s.count for s in SkippedClicks.objects.all()}


@pytest.mark.django_db
@pytest.mark.parametrize("user_agent", BOTS.values(), ids=BOTS.keys())
def test_a_bot_or_link_previewer_is_redirected_but_not_recorded(client, link, user_agent):
    response = client.get(f"/c/{link.code}?sub1=fb", HTTP_USER_AGENT=user_agent)

    assert response.status_code == 302
    assert response["Location"].startswith("https://casino.example/")
    assert query(response)["s1"] == ["fb"]
    assert query(response).get("cid", [""]) == [""]  # no click, so no click id to pass on
    assert Click.objects.count() == 0
    assert skipped() == {(link.pk, "bot"): 1}


@pytest.mark.django_db
@pytest.mark.parametrize("user_agent", BROWSERS.values(), ids=BROWSERS.keys())
def test_a_browser_is_recorded(client, link, user_agent):
    response = client.get(f"/c/{link.code}", HTTP_USER_AGENT=user_agent)

    assert response.status_code == 302
    assert query(response)["cid"] == [Click.objects.get().click_id]
    assert skipped() == {}


@pytest.mark.django_db
def test_a_head_request_is_redirected_but_not_recorded(client, link):
    response = client.head(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)

    assert response.status_code == 302
    assert response["Location"].startswith("https://casino.example/")
    assert Click.objects.count() == 0
    assert skipped() == {(link.pk, "head"): 1}


@pytest.mark.django_db
def test_skipped_requests_are_counted_per_day_link_and_reason(client, link, alice):
    other = TrackingLinkFactory(affiliate=alice)
    # given a day of mixed traffic on two links
    for _ in range(3):
        client.get(f"/c/{link.code}", HTTP_USER_AGENT=BOTS["slackbot"])
    client.head(f"/c/{link.code}", HTTP_USER_AGENT=BOTS["slackbot"])  # HEAD wins over bot
    client.head(f"/c/{other.code}")
    client.get(f"/c/{other.code}", HTTP_USER_AGENT=BOTS["googlebot"])
    client.get(f"/c/{other.code}", HTTP_USER_AGENT=ANDROID)

    # then one counter per link and reason, and only the browser's click is stored
    assert skipped() == {
        (link.pk, "bot"): 3,
        (link.pk, "head"): 1,
        (other.pk, "head"): 1,
        (other.pk, "bot"): 1,
    }
    assert {s.day for s in SkippedClicks.objects.all()} == {timezone.now().date()}
    assert Click.objects.get().link_id == other.pk


@pytest.mark.django_db
def test_skipped_counts_wait_in_the_process_until_their_flush(client, link, settings):
    settings.CLICK_SKIPPED_FLUSH_SECONDS = 3600
    visitors.tally.flush()  # the first skip of an interval writes at once; start one now
    for _ in range(4):
        client.get(f"/c/{link.code}", HTTP_USER_AGENT=BOTS["facebookexternalhit"])
    assert skipped() == {}

    visitors.tally.flush()  # as the gunicorn worker does when it exits

    assert skipped() == {(link.pk, "bot"): 4}


# The fast path answers clicks in front of Django's middleware: what that middleware puts on an
# answer (security headers, HTTPS), a click must still get.


def fresh_fast_path():
    """``portal.wsgi``'s stack made anew, so that it reads the test's settings."""
    from django.core.wsgi import get_wsgi_application

    from attribution.fastpath import ClickFastPath

    return WsgiClient(ClickFastPath(get_wsgi_application()))


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["http", "https"])
def test_the_fast_path_answers_with_the_headers_django_would(client, link, settings, scheme):
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    from django.test import Client

    secure = {"secure": scheme == "https"}
    fast = fresh_fast_path().get(f"/c/{link.code}", **secure)
    slow = Client().get(f"/c/{link.code}", **secure)

    assert fast.status_code == slow.status_code == 302
    ignored = {"location"}
    fast_headers = {k.lower(): v for k, v in fast.header_list if k.lower() not in ignored}
    slow_headers = {k.lower(): v for k, v in slow.items() if k.lower() not in ignored}
    assert fast_headers == slow_headers
    assert ("strict-transport-security" in fast_headers) == (scheme == "https")


@pytest.mark.django_db
def test_a_plain_http_click_is_sent_to_https_when_the_site_requires_it(link, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["track.example"]

    response = fresh_fast_path().get(f"/c/{link.code}?sub1=a", HTTP_HOST="track.example")

    assert response.status_code == 301
    assert response["Location"] == f"https://track.example/c/{link.code}?sub1=a"
    assert not Click.objects.exists()  # recorded when the visitor comes back over HTTPS


@pytest.mark.django_db
def test_the_fast_path_takes_a_click_behind_a_tls_proxy(link, settings):
    settings.SECURE_SSL_REDIRECT = True

    response = fresh_fast_path().get(f"/c/{link.code}", HTTP_X_FORWARDED_PROTO="https")

    assert response.status_code == 302
    assert Click.objects.count() == 1


@pytest.mark.django_db
def test_a_host_the_site_does_not_serve_is_refused_as_django_would(link, settings):
    settings.ALLOWED_HOSTS = ["track.example"]

    refused = fresh_fast_path().get(f"/c/{link.code}", HTTP_HOST="evil.example")
    served = fresh_fast_path().get(f"/c/{link.code}", HTTP_HOST="track.example")

    assert (refused.status_code, served.status_code) == (400, 302)
    assert Click.objects.count() == 1
