"""Our redirect to a Kochava tracker link, and the custom postback Kochava sends from it.

Kochava tracker links take the network's ``click_id`` (and ``device_id``, ``site_id``) and
return the click id on postbacks as {click_id} (Kochava tracking link parameters as an ad
network documents them: https://help.moloco.com/hc/en-us/articles/6187564899991).
"""

from datetime import timedelta

import pytest

from attribution.models import Click, Method
from attribution.parsing import senders
from tests.conformance.helpers import (
    ANDROID,
    conversion_of,
    decoded_query,
    fill_macros,
    path_and_query,
    processed,
)
from tests.factories import AppFactory, CampaignFactory, PostbackSourceFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"


def test_the_postback_kochava_sends_from_our_link_credits_the_affiliate(client, alice):
    app = AppFactory(platform="android", bundle_id="com.lucky.android", app_store_id="")
    source = PostbackSourceFactory(kind="kochava", app=app)
    campaign = CampaignFactory(android_app=app, android_url="https://lucky.smart.link/x1y2z3")
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    response = client.get(f"/c/{link.code}?gaid={GAID}", HTTP_USER_AGENT=ANDROID)
    clicked = decoded_query(response["Location"])
    click = Click.objects.get()
    installed = click.created_at + timedelta(minutes=4)

    template = senders.templates_for("kochava", f"http://testserver{source.path}")[0].text
    values = {
        "click_id": clicked["click_id"],
        "event_name": "_install",
        "event_time": str(int(installed.timestamp())),
        "kochava_device_id": "KA1a2b3c4d5e6f",
        "adid": GAID,
        "platform": "android",
    }
    event = processed(client.get(path_and_query(fill_macros(template, values, r"\{([a-z_]+)\}"))))

    assert clicked["click_id"] == click.click_id
    assert (clicked["site_id"], clicked["device_id"]) == (str(alice.pk), GAID)
    conversion = conversion_of(event)
    assert (conversion.affiliate, conversion.method, conversion.type) == (
        alice,
        Method.CLICK_ID,
        "install",
    )
