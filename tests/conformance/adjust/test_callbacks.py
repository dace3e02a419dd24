"""Adjust callbacks as Adjust's help center documents them, through the real endpoint.

Templates and placeholder example values are copied from help.adjust.com (URL beside each);
a placeholder the template uses but the example does not fill is dropped, as Adjust drops it.
"""

from decimal import Decimal

import pytest

from attribution.models import Conversion
from tests.conformance.helpers import conversion_of, fill_adjust, get, processed, utc
from tests.factories import PostbackSourceFactory

pytestmark = pytest.mark.django_db

# https://help.adjust.com/en/article/event-callbacks ("Other recommended placeholders"): the
# example value of each placeholder. The IDFA example is printed with a letter O
# ("8C6CBCOD"), which is not hex: a device id that is not a UUID is kept out of the event.
EXAMPLES = {
    "gps_adid": "38400000-8cf0-11bd-b23e-10b96e40000d",
    "idfa": "8C6CBCOD-5F43-4765-A6E6-84DFF3D24707",
    "idfv": "CCB300A0-DE1B-4D48-BC7E-599E453B8DD4",
    "adid": "18546f6171f67e29d1cb983322ad1329",
    "link_token": "abc123",
    "link_name": "Network1::Christmas::Reindeers::320x70_en",
    "app_name": "MyApp",
    "created_at": "1404214665",
    "installed_at": "1404214634",
    "event": "bkrfgq",
    "event_name": "purchase_100_coins",
    "rejection_reason": "anonymous_traffic",
}

# https://help.adjust.com/en/article/event-callbacks ("Callback URL with placeholders")
EVENT_CALLBACK = (
    "https://serverendpoint.com/mobile_attribution?gps_adid={gps_adid}&idfa={idfa}&idfv={idfv}"
    "&adid={adid}&tracker_token={link_token}&tracker_name={link_name}&app_name={app_name}"
    "&activity_kind={activity_kind}&created_at={created_at}&event_token={event}"
    "&event_name={event_name}"
)
# https://help.adjust.com/en/article/adjust-tracker-encoding-tool-partner ("Install callback
# URL example")
INSTALL_CALLBACK = (
    "https://mynetworkserver.com/mobile_attribution?gps_adid={gps_adid}&idfa={idfa}&adid={adid}"
    "&activity_kind={activity_kind}&installed_at={installed_at}"
)
# https://help.adjust.com/en/article/rejected-install-or-reattribution-callbacks
REJECTED_CALLBACK = (
    "https://mynetworkserver.com/mobile_attribution?gps_adid={gps_adid}&idfa={idfa}&idfv={idfv}"
    "&adid={adid}&tracker_name={link_name}&app_name={app_name}&activity_kind={activity_kind}"
    "&created_at={created_at}&rejection_reason={rejection_reason}"
)
# https://help.adjust.com/en/article/ad-revenue-callbacks: {revenue} "(in cents)" 345,
# {currency} usd, {revenue_float} "(in whole currency units)" 3.99.
AD_REVENUE_CALLBACK = (
    "https://serverendpoint.com/mobile_attribution?gps_adid={gps_adid}&adid={adid}"
    "&activity_kind={activity_kind}&created_at={created_at}&revenue={revenue}"
    "&currency={currency}&revenue_float={revenue_float}"
)


def callback(template: str, **values: str) -> str:
    return fill_adjust(template, {**EXAMPLES, **values}).split("?", 1)[1]


@pytest.fixture
def adjust():
    return PostbackSourceFactory(kind="adjust")


def test_the_documented_event_callback_is_an_event_at_created_at(client, adjust):
    event = processed(get(client, adjust, callback(EVENT_CALLBACK, activity_kind="event")))

    assert (event.kind, event.event_name) == ("event", "purchase_100_coins")
    assert event.occurred_at == utc(2014, 7, 1, 11, 37, 45)  # {created_at} 1404214665, Unix s
    assert event.mmp_device_id == "18546f6171f67e29d1cb983322ad1329"
    assert event.gaid == "38400000-8cf0-11bd-b23e-10b96e40000d"
    assert event.idfv == "CCB300A0-DE1B-4D48-BC7E-599E453B8DD4"
    assert event.idfa == ""  # the documented example is not a UUID
    assert event.revenue is None


def test_the_documented_install_callback_without_created_at_is_read_at_installed_at(client, adjust):
    event = processed(get(client, adjust, callback(INSTALL_CALLBACK, activity_kind="install")))

    assert (event.kind, event.conversion_type) == ("install", "install")
    assert event.occurred_at == utc(2014, 7, 1, 11, 37, 14)  # {installed_at} 1404214634
    assert event.installed_at == utc(2014, 7, 1, 11, 37, 14)
    assert event.platform == "android"  # a GAID and no Apple id


def test_revenue_is_in_cents_and_revenue_float_in_units(client, adjust):
    in_cents = callback(
        AD_REVENUE_CALLBACK, activity_kind="ad_revenue", revenue="345", currency="usd"
    )
    in_units = callback(
        AD_REVENUE_CALLBACK,
        activity_kind="ad_revenue",
        revenue_float="3.99",
        currency="usd",
        created_at="1404214666",
    )

    cents = processed(get(client, adjust, in_cents))
    units = processed(get(client, adjust, in_units))

    assert (cents.revenue, cents.currency) == (Decimal("3.45"), "USD")
    assert (units.revenue, units.currency) == (Decimal("3.99"), "USD")
    assert cents.event_name == "ad_revenue"


def test_the_sources_setting_reads_revenue_as_units_when_the_template_put_units_there(client):
    adjust = PostbackSourceFactory(kind="adjust", revenue_unit="units")
    query = callback(
        AD_REVENUE_CALLBACK, activity_kind="ad_revenue", revenue="3.99", currency="usd"
    )

    event = processed(get(client, adjust, query))

    assert event.revenue == Decimal("3.99")


def test_a_rejected_install_is_recorded_with_its_reason_and_never_paid(client, adjust):
    query = callback(REJECTED_CALLBACK, activity_kind="rejected_install")

    event = processed(get(client, adjust, query))

    assert (event.kind, event.blocked_reason) == ("rejected", "anonymous_traffic")
    conversion = conversion_of(event)
    assert conversion.status == Conversion.Status.REJECTED


def test_a_reattribution_callback_is_a_reattribution(client, adjust):
    query = callback(INSTALL_CALLBACK, activity_kind="reattribution")

    event = processed(get(client, adjust, query))

    assert (event.kind, event.is_retargeting) == ("reattribution", True)


def test_a_callback_without_adid_is_accepted_and_its_retry_is_a_duplicate(client, adjust):
    # Adjust drops a placeholder it has no data for: here {adid}.
    without_adid = {k: v for k, v in EXAMPLES.items() if k != "adid"}
    query = fill_adjust(EVENT_CALLBACK, {**without_adid, "activity_kind": "event"}).split("?")[1]

    first = get(client, adjust, query)
    retry = get(client, adjust, query)

    assert first.json()["status"] == "accepted"
    assert retry.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert processed(first).mmp_device_id == ""
