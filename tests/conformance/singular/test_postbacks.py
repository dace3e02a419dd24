"""Singular postbacks to ad networks as Singular documents them.

https://support.singular.net/hc/en-us/articles/115004063323-Postback-Macros-and-Passthrough-Parameters-for-Ad-Networks
gives the example template below and the macros: {cl?Network Name} is the network's click id
from the link's ``cl``; {UTCM} the event time in Unix milliseconds ({UTC} in seconds);
{AMOUNT} the revenue; {EVTNAME} the event; {LONGNAME} the bundle id ("com.example.myapp");
{PUBLIC_ID} the App Store id ("1441750662"); {IS_RE_ENG} and {IS_VIEWTHROUGH} "1" or "0".
Values the article does not give are made up in those formats.
"""

from decimal import Decimal

import pytest

from attribution.models import Postback
from tests.conformance.helpers import fill_macros, get, processed, utc
from tests.factories import PostbackSourceFactory

pytestmark = pytest.mark.django_db

CLICK = "01JD3K9Q8X4M2N7P5R6S8T0V1W"
MACRO = r"\{+([A-Za-z_?]+)\}+"

# The article's "example postback format".
EXAMPLE = (
    "cl_id={cl?NetworkName}&app_id={{app_id}}&ip={EVENT_IP}&amount={AMOUNT}&event={EVTNAME}"
    "&timestamp={UTCM}"
)
EXAMPLE_VALUES = {
    "cl?NetworkName": CLICK,
    "app_id": "115873",  # a static passthrough value, as in the article's "aid=115873"
    "EVENT_IP": "203.0.113.9",
    "AMOUNT": "4.99",
    "EVTNAME": "purchase",
    "UTCM": "1698990544897",
}


@pytest.fixture
def singular():
    return PostbackSourceFactory(kind="singular")


def test_the_documented_example_reads_cl_id_as_our_click_id(client, singular):
    query = fill_macros(EXAMPLE, EXAMPLE_VALUES, MACRO)

    event = processed(get(client, singular, query))

    assert event.click_id == CLICK  # was left unread: the install went organic
    assert (event.kind, event.event_name) == ("event", "purchase")
    assert event.occurred_at == utc(2023, 11, 3, 5, 49, 4, 897000)  # {UTCM}: milliseconds
    assert event.revenue == Decimal("4.99")
    assert event.ip == "203.0.113.9"
    # No Singular device id in this template: keyed by the click id and the time.
    assert Postback.objects.get().dedup_key == (
        f"singular:device:click_id:{CLICK}:purchase:2023-11-03T05:49:04.897Z"
    )


def test_its_retry_is_a_duplicate_and_the_next_purchase_is_not(client, singular):
    query = fill_macros(EXAMPLE, EXAMPLE_VALUES, MACRO)
    later = fill_macros(EXAMPLE, {**EXAMPLE_VALUES, "UTCM": "1698990600000"}, MACRO)

    first = get(client, singular, query)
    retry = get(client, singular, query)
    second = get(client, singular, later)

    assert retry.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert second.json()["status"] == "accepted"


def test_an_install_with_an_unfilled_event_macro_and_the_documented_app_ids(client, singular):
    # {EVTNAME} has been seen arriving unfilled on install postbacks.
    query = (
        f"cl_id={CLICK}&evtname=%7BEVTNAME%7D&utc=1698811507&longname=com.example.myapp"
        "&public_id=1441750662&idfa=8C6CBC0D-5F43-4765-A6E6-84DFF3D24707&platform=iOS"
        "&is_re_eng=0&is_viewthrough=1"
    )

    event = processed(get(client, singular, query))

    assert (event.kind, event.event_name) == ("install", "install")
    assert event.occurred_at == utc(2023, 11, 1, 4, 5, 7)  # {UTC}: seconds
    assert (event.app_identifier, event.platform) == ("com.example.myapp", "ios")
    assert (event.is_retargeting, event.touch_type) == (False, "impression")


def test_a_re_engagement_flag_of_1_is_retargeting(client, singular):
    query = f"cl_id={CLICK}&evtname=deposit&utc=1698811507&is_re_eng=1&amount=10&currency=EUR"

    event = processed(get(client, singular, query))

    assert event.is_retargeting is True
    assert (event.revenue, event.currency) == (Decimal("10"), "EUR")
