"""Our redirect to an AppsFlyer link, read as AppsFlyer reads it, and the postback it sends.

AppsFlyer echoes attribution-link parameters into the partner's postback (base postback spec:
"Inside the postback, we can send you back anything you sent to us on the click") and fills
its own macros from the SDK. The template is the one the source's setup page shows.
"""

from datetime import timedelta

import pytest

from attribution.models import Click, Method
from attribution.parsing import senders
from tests.conformance.helpers import (
    IPHONE,
    conversion_of,
    decoded_query,
    fill_macros,
    path_and_query,
    processed,
)
from tests.factories import CampaignFactory, PostbackSourceFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

IDFA = "8C6CBC0D-5F43-4765-A6E6-84DFF3D24707"


def test_the_postback_appsflyer_sends_from_our_link_credits_the_affiliate(client, alice, app):
    # given: a click on an AppsFlyer link, and the install postback template pasted into AppsFlyer
    source = PostbackSourceFactory(kind="appsflyer", app=app)
    campaign = CampaignFactory(ios_app=app, ios_url="https://app.appsflyer.com/id1234567890")
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    install_template = senders.templates_for("appsflyer", f"http://testserver{source.path}")[0]
    response = client.get(f"/c/{link.code}?idfa={IDFA}", HTTP_USER_AGENT=IPHONE)
    clicked = decoded_query(response["Location"])
    click = Click.objects.get()

    # when: AppsFlyer attributes the install to the click and fills the template; this
    # network's deal gives it no appsflyer_id
    installed = click.created_at + timedelta(minutes=3)
    values = {
        "clickid": clicked["clickid"],
        "af_siteid": clicked["af_siteid"],
        "idfa": IDFA,
        "app_id": "id1234567890",
        "platform": "ios",
        "country_code": "DE",
        "install_unix_ts": str(int(installed.timestamp())),
        "attributed_touch_type": "click",
        "is_retargeting": "false",
    }
    url = fill_macros(install_template.text, values, r"\{([a-z_]+)\}")
    event = processed(client.get(path_and_query(url)))

    # then
    assert clicked["clickid"] == click.click_id
    assert clicked["af_siteid"] == str(alice.pk)
    conversion = conversion_of(event)
    assert (conversion.affiliate, conversion.method, conversion.type) == (
        alice,
        Method.CLICK_ID,
        "install",
    )
    assert conversion.ctit_seconds in (179, 180)  # install_unix_ts is whole seconds
