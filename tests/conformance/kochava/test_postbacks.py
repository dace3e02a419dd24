"""Kochava custom postbacks.

https://support.kochava.com/campaign-management/create-a-custom-postback: the partner picks
the destination URL's keys and Kochava's macros for their values: the event name ("will be
“_install” for installs"), the event value ("numerical data provided with event"), the datetime
of the event, IP, user agent, IDFA, ADID, Android ID, Kochava device id, network name; 0 to 10
retries. The macro names {click_id}, {kochava_device_id}, {event_value}, {currency},
{platform} and {country} are those of a production template an ad network publishes
(https://wiki.awin.com/index.php/Awin_Kochava). Values are made up in those formats.
"""

from decimal import Decimal

import pytest

from attribution.models import Postback
from tests.conformance.helpers import fill_macros, get, processed, utc
from tests.factories import PostbackSourceFactory

pytestmark = pytest.mark.django_db

CLICK = "01JD3K9Q8X4M2N7P5R6S8T0V1W"
TEMPLATE = (
    "click_id={click_id}&event_name={event_name}&event_time={event_time}"
    "&kochava_device_id={kochava_device_id}&idfa={idfa}&adid={adid}&ip={ip_address}"
    "&event_value={event_value}&currency={currency}&platform={platform}&country={country}"
)
DEVICE = {
    "click_id": CLICK,
    "kochava_device_id": "KA1a2b3c4d5e6f",
    "adid": "38400000-8cf0-11bd-b23e-10b96e40000d",
    "ip_address": "203.0.113.9",
    "platform": "android",
    "country": "DE",
}
MACRO = r"\{([a-z_]+)\}"


def test_an_install_is_named_underscore_install(client):
    kochava = PostbackSourceFactory(kind="kochava")
    query = fill_macros(
        TEMPLATE, {**DEVICE, "event_name": "_install", "event_time": "1698811507"}, MACRO
    )

    event = processed(get(client, kochava, query))

    assert (event.kind, event.event_name, event.click_id) == ("install", "install", CLICK)
    assert event.occurred_at == utc(2023, 11, 1, 4, 5, 7)
    assert (event.mmp_device_id, event.platform, event.country) == (
        "KA1a2b3c4d5e6f",
        "android",
        "DE",
    )
    assert event.revenue is None
    assert Postback.objects.get().dedup_key == (
        "kochava:device:kochava_device_id:KA1a2b3c4d5e6f:install:2023-11-01T04:05:07Z"
    )


def test_a_numeric_event_value_is_the_revenue_in_units(client):
    kochava = PostbackSourceFactory(kind="kochava")
    values = {
        **DEVICE,
        "event_name": "Purchase",
        "event_time": "1698990544",
        "event_value": "4.99",
        "currency": "USD",
    }

    event = processed(get(client, kochava, fill_macros(TEMPLATE, values, MACRO)))

    assert (event.kind, event.event_name) == ("event", "purchase")
    assert (event.revenue, event.currency) == (Decimal("4.99"), "USD")


def test_a_source_set_to_cents_reads_the_event_value_in_cents(client):
    kochava = PostbackSourceFactory(kind="kochava", revenue_unit="cents")
    values = {
        **DEVICE,
        "event_name": "Purchase",
        "event_time": "1698990544",
        "event_value": "499",
        "currency": "USD",
    }

    event = processed(get(client, kochava, fill_macros(TEMPLATE, values, MACRO)))

    assert event.revenue == Decimal("4.99")


def test_a_free_text_event_value_is_no_revenue_and_no_error(client):
    kochava = PostbackSourceFactory(kind="kochava")
    values = {
        **DEVICE,
        "event_name": "Level Up",
        "event_time": "1698990544",
        "event_value": '{"level":"7"}',
    }

    event = processed(get(client, kochava, fill_macros(TEMPLATE, values, MACRO)))

    assert (event.event_name, event.revenue) == ("level up", None)


def test_a_retry_is_a_duplicate(client):
    kochava = PostbackSourceFactory(kind="kochava")
    query = fill_macros(
        TEMPLATE, {**DEVICE, "event_name": "_install", "event_time": "1698811507"}, MACRO
    )

    first = get(client, kochava, query)
    retry = get(client, kochava, query)

    assert retry.json() == {"status": "duplicate", "id": first.json()["id"]}
