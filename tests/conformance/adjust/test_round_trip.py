"""Our redirect to an Adjust link, decoded and filled as Adjust does, back through our endpoint.

Adjust's rules (help.adjust.com/en/article/encoding-callbacks-partner and
help.adjust.com/en/article/callback-structure-partner): the callback URL is encoded once on the
link; Adjust decodes the link once, keeps each callback for the device, fills its
``{placeholders}`` at callback time and drops those it has no data for. The partner's own
values (our click id) must already be in the callback.
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from attribution.models import Click, Method
from attribution.parsing import senders
from tests.conformance.helpers import (
    ANDROID,
    conversion_of,
    decoded_query,
    fill_adjust,
    path_and_query,
    processed,
)
from tests.factories import AppFactory, CampaignFactory, PostbackSourceFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"  # help.adjust.com placeholder examples
ADID = "18546f6171f67e29d1cb983322ad1329"


@pytest.fixture
def adjust_link(alice):
    app = AppFactory(platform="android", bundle_id="com.lucky.android", app_store_id="")
    source = PostbackSourceFactory(kind="adjust", app=app, event_mapping={"bkrfgq": "ftd"})
    # What the manager pasted from the source's setup page onto the campaign's Adjust link.
    suffix = senders.adjust_link_suffix(f"http://testserver{source.path}", ["bkrfgq"])
    campaign = CampaignFactory(
        android_app=app,
        android_url=f"https://app.adjust.com/abc123?campaign={{campaign_id}}{suffix}",
    )
    return TrackingLinkFactory(affiliate=alice, campaign=campaign)


def test_adjust_sees_its_placeholders_and_our_click_id_after_decoding_once(client, adjust_link):
    response = client.get(f"/c/{adjust_link.code}?gaid={GAID}", HTTP_USER_AGENT=ANDROID)

    link = decoded_query(response["Location"])
    click = Click.objects.get()
    install = link["install_callback"]
    assert install.startswith("http://testserver/postbacks/adjust/")
    assert "adid={adid}" in install and "created_at={created_at}" in install
    assert f"click_id={click.click_id}" in install
    assert "%7B" not in install  # no placeholder hidden behind a second encoding
    assert "event={event}" in link["event_callback_bkrfgq"]
    assert link["campaign"] == str(adjust_link.campaign_id)


def test_the_callbacks_adjust_sends_from_our_link_credit_the_affiliate(client, alice, adjust_link):
    # given: a click on our link, and Adjust holding the link's callbacks
    response = client.get(f"/c/{adjust_link.code}?gaid={GAID}", HTTP_USER_AGENT=ANDROID)
    link = decoded_query(response["Location"])
    click = Click.objects.get()
    installed = click.created_at + timedelta(minutes=2)
    device = {"adid": ADID, "gps_adid": GAID, "country": "de", "os_name": "android"}

    # when: the install, then a first deposit, as Adjust fills the callbacks
    install_url = fill_adjust(
        link["install_callback"],
        {
            **device,
            "activity_kind": "install",
            "created_at": str(int(installed.timestamp())),
            "installed_at": str(int(installed.timestamp())),
        },
    )
    deposit_url = fill_adjust(
        link["event_callback_bkrfgq"],
        {
            **device,
            "activity_kind": "event",
            "event": "bkrfgq",
            "event_name": "First deposit",
            "created_at": str(int(installed.timestamp()) + 600),
            "revenue_float": "4.99",
            "currency": "EUR",
        },
    )
    install = processed(client.get(path_and_query(install_url)))
    deposit = processed(client.get(path_and_query(deposit_url)))

    # then
    assert install.click_id == deposit.click_id == click.click_id
    installed_conversion = conversion_of(install)
    assert (installed_conversion.affiliate, installed_conversion.method) == (alice, Method.CLICK_ID)
    assert installed_conversion.type == "install"
    ftd = conversion_of(deposit)
    assert (ftd.type, ftd.affiliate, ftd.revenue, ftd.currency) == (
        "ftd",
        alice,
        Decimal("4.99"),
        "EUR",
    )
