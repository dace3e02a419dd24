"""The postback source's admin page: the templates to paste, and 'try a postback'."""

from datetime import timedelta
from decimal import Decimal
from html import unescape
from urllib.parse import unquote

import pytest
from django.urls import reverse

from attribution.models import Click, Conversion, Postback, PostbackEvent
from tests.factories import CampaignFactory, PostbackSourceFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15"


def try_url(source) -> str:
    return reverse("admin:attribution_postbacksource_try", args=[source.pk])


@pytest.mark.parametrize(
    ("kind", "macros"),
    [
        ("appsflyer", ["clickid={clickid}", "install_unix_ts={install_unix_ts}", "event_revenue="]),
        ("adjust", ["install_callback=", "adid%3D%7Badid%7D", "click_id%3D{click_id}"]),
        ("branch", ["${(last_attributed_touch_data.~click_id)!}"]),
        ("singular", ["cl_id={cl?NETWORK}", "amount={AMOUNT}", "utc={UTC}"]),
        ("kochava", ["click_id={click_id}", "event_value={event_value}"]),
    ],
)
def test_the_change_page_shows_the_full_template_with_the_mmps_macros(manager_client, kind, macros):
    source = PostbackSourceFactory(kind=kind)

    page = manager_client.get(reverse("admin:attribution_postbacksource_change", args=[source.pk]))

    text = unescape(page.content.decode())
    assert page.status_code == 200
    assert f"http://testserver/postbacks/{kind}/{source.token}/" in unquote(text)
    for macro in macros:
        assert macro in text, macro
    assert try_url(source) in text


def test_trying_a_postback_shows_how_it_is_read_and_who_it_would_credit_without_storing_it(
    manager_client, alice, app
):
    # given: a click of alice's, and an AppsFlyer source for the app
    source = PostbackSourceFactory(kind="appsflyer", app=app, event_mapping={"af_deposit": "ftd"})
    campaign = CampaignFactory(ios_app=app, ios_url="https://app.appsflyer.com/id1234567890")
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    manager_client.get(f"/c/{link.code}", HTTP_USER_AGENT=IPHONE)
    click = Click.objects.get()
    at = (click.created_at + timedelta(minutes=5)).strftime("%Y-%m-%d%%20%H%%3A%M%%3A%S")
    pasted = (
        f"https://portal.example{source.path}?clickid={click.click_id}&event_name=af_deposit"
        f"&event_revenue=25.50&event_revenue_currency=EUR&idfa=(idfa)&event_time={at}"
    )

    # when
    page = manager_client.post(try_url(source), {"pasted": pasted, "body": ""})

    # then
    text = unescape(page.content.decode())
    assert page.status_code == 200
    assert f"af:clickid:{click.click_id}:af_deposit" in text
    assert "Alice Media" in text and "click_id" in text and "approved" in text
    assert "ftd" in text and str(Decimal("25.50")) in text
    assert Postback.objects.count() == PostbackEvent.objects.count() == 0
    assert Conversion.objects.count() == 0


def test_trying_a_bad_postback_says_why_and_stores_nothing(manager_client):
    source = PostbackSourceFactory(kind="adjust")

    page = manager_client.post(try_url(source), {"pasted": "created_at=1404214665", "body": ""})

    assert page.status_code == 400
    assert "adid is missing" in page.content.decode()
    assert Postback.objects.count() == 0


def test_trying_a_json_body_and_seeing_it_is_a_repeat(manager_client, client):
    source = PostbackSourceFactory(kind="branch")
    body = '{"name": "OPEN", "id": "635390319521351354", "timestamp": 1552727083843}'
    stored = client.post(
        f"/postbacks/branch/{source.token}/", body, content_type="application/json"
    )

    page = manager_client.post(try_url(source), {"pasted": body, "body": ""})

    assert "branch:635390319521351354" in page.content.decode()
    assert f"#{stored.json()['id']}" in page.content.decode()
    assert Postback.objects.count() == 1


def test_only_staff_may_try(client, alice):
    source = PostbackSourceFactory(kind="adjust")

    page = client.get(try_url(source))

    assert page.status_code == 302  # to the admin login
