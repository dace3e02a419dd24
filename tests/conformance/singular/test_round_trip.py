"""Our redirect to a Singular link, and the postback Singular sends from it.

Singular stores the link's ``cl`` and returns it as {cl?Network Name} (Postback Macros and
Passthrough Parameters for Ad Networks; Tracking Link Parameters: "cl: the ID of the click or
transaction", https://support.singular.net/hc/en-us/articles/360018879491).
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
    fill_macros,
    path_and_query,
    processed,
)
from tests.factories import AppFactory, CampaignFactory, PostbackSourceFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"


def test_the_postbacks_singular_sends_from_our_link_credit_the_affiliate(client, alice):
    # given
    app = AppFactory(platform="android", bundle_id="com.lucky.android", app_store_id="")
    source = PostbackSourceFactory(kind="singular", app=app, event_mapping={"deposit": "ftd"})
    campaign = CampaignFactory(android_app=app, android_url="https://lucky.sng.link/Bvx2a/ab12")
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    response = client.get(f"/c/{link.code}?gaid={GAID}", HTTP_USER_AGENT=ANDROID)
    clicked = decoded_query(response["Location"])
    click = Click.objects.get()
    installed = click.created_at + timedelta(minutes=5)
    install_template, event_template = senders.templates_for(
        "singular", f"http://testserver{source.path}"
    )

    # when: Singular fills the templates ({cl?NETWORK} from the link's cl)
    values = {
        "cl?NETWORK": clicked["cl"],
        "UTC": str(int(installed.timestamp())),
        "INSTALL_UTC": str(int(installed.timestamp())),
        "AIFA": GAID,
        "PLATFORM": "Android",
        "ATTRIBUTION_COUNTRY": "DE",
        "LONGNAME": "com.lucky.android",
        "IS_RE_ENG": "0",
        "IS_VIEWTHROUGH": "0",
    }
    macro = r"\{([A-Za-z_?]+)\}"
    install = processed(
        client.get(path_and_query(fill_macros(install_template.text, values, macro)))
    )
    deposit_values = {
        **values,
        "EVTNAME": "deposit",
        "UTC": str(int(installed.timestamp()) + 300),
        "AMOUNT": "25.50",
        "CURRENCY": "EUR",
    }
    deposit = processed(
        client.get(path_and_query(fill_macros(event_template.text, deposit_values, macro)))
    )

    # then
    assert clicked["cl"] == click.click_id and clicked["aifa"] == GAID
    conversion = conversion_of(install)
    assert (conversion.affiliate, conversion.method, conversion.type) == (
        alice,
        Method.CLICK_ID,
        "install",
    )
    ftd = conversion_of(deposit)
    assert (ftd.type, ftd.affiliate, ftd.revenue, ftd.currency) == (
        "ftd",
        alice,
        Decimal("25.50"),
        "EUR",
    )
