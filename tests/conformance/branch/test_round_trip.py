"""Our redirect to a Branch link, and the webhook Branch sends for the install it attributes.

Branch keeps every link parameter and returns it in ``last_attributed_touch_data`` ("~"
analytics fields and custom keys unchanged; help.branch.io webhooks, and the recorded
``+url``/``~click_id`` pairs in Branch's migration guide). Ad partners pass ``~click_id``,
``$idfa``/``$aaid`` and ``~secondary_publisher`` on the link (Branch ad-partner link templates,
e.g. https://help.trackier.com/support/solutions/articles/31000155035).
"""

from datetime import timedelta
from decimal import Decimal

import pytest

from attribution.models import Click, Method
from attribution.parsing import senders
from tests.conformance.helpers import IPHONE, conversion_of, decoded_query, post_json, processed
from tests.factories import CampaignFactory, PostbackSourceFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

IDFA = "27AFDDCC-15DA-3A32-EF33-D0469D36A673"


def test_the_webhook_branch_sends_from_our_link_credits_the_affiliate(client, alice, app):
    # given
    source = PostbackSourceFactory(kind="branch", app=app)
    campaign = CampaignFactory(ios_app=app, ios_url="https://luckyspins.app.link/3YL9g523sds")
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    response = client.get(f"/c/{link.code}?idfa={IDFA}", HTTP_USER_AGENT=IPHONE)
    clicked = decoded_query(response["Location"])
    click = Click.objects.get()
    assert clicked["~click_id"] == click.click_id
    assert clicked["$idfa"] == IDFA
    assert clicked["~secondary_publisher"] == str(alice.pk)
    installed = click.created_at + timedelta(minutes=1)

    # when: Branch posts its default body for the install, then a purchase
    webhook = senders.templates_for("branch", source.path)[0].text
    touch = {**clicked, "+click_timestamp": int(click.created_at.timestamp())}
    user = {"os": "IOS", "platform": "IOS_APP", "idfa": IDFA, "geo_country_code": "DE"}
    install = processed(
        post_json(
            client,
            source,
            {
                "name": "INSTALL",
                "user_data": user,
                "last_attributed_touch_data": touch,
                "timestamp": int(installed.timestamp() * 1000),
            },
        )
    )
    purchase = processed(
        post_json(
            client,
            source,
            {
                "name": "PURCHASE",
                "user_data": user,
                "last_attributed_touch_data": touch,
                "event_data": {"transaction_id": "tx-1", "revenue": 19.99, "currency": "GBP"},
                "timestamp": int(installed.timestamp() * 1000) + 60_000,
            },
        )
    )

    # then
    assert webhook == source.path
    conversion = conversion_of(install)
    assert (conversion.affiliate, conversion.method, conversion.type) == (
        alice,
        Method.CLICK_ID,
        "install",
    )
    bought = conversion_of(purchase)
    assert (bought.affiliate, bought.revenue, bought.currency) == (alice, Decimal("19.99"), "GBP")
