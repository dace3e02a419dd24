"""AppsFlyer partner postbacks and Push API messages as AppsFlyer documents them.

Where a document gives the template but no values, the values are made up in the format the
document states (noted beside each); the expected reading of every field (unit, time format,
which macro means what) is the document's.
"""

import json
from decimal import Decimal
from urllib.parse import quote

import pytest

from attribution.models import Conversion, Postback
from tests.conformance.helpers import conversion_of, fill_macros, get, post_json, processed, utc
from tests.factories import PostbackSourceFactory

pytestmark = pytest.mark.django_db

CLICK = "01JD3K9Q8X4M2N7P5R6S8T0V1W"  # ours, echoed from the attribution link's clickid
GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"
IDFA = "8C6CBC0D-5F43-4765-A6E6-84DFF3D24707"

# https://support.appsflyer.com/hc/en-us/articles/4413892641681-Base-postback-specification-for-ad-networks-
# "Example install postback template" (its {county_code} typo included, as AppsFlyer prints
# it). No appsflyer_id and no time: an ad network picks the macros it receives.
BASE_SPEC_INSTALL = (
    "clickid={clickid}&affiliate_id={af_siteid}&advertising_id={gaid}&country={county_code}"
    "&AppName={app_name}"
)
BASE_SPEC_VALUES = {  # made up in the documented formats
    "clickid": CLICK,
    "af_siteid": "42",
    "gaid": GAID,
    "county_code": "DE",
    "app_name": "Lucky Spins",
}
MACRO = r"\{([a-z_]+)\}"


@pytest.fixture
def appsflyer():
    return PostbackSourceFactory(kind="appsflyer", event_mapping={"af_first_deposit": "ftd"})


def test_the_base_spec_install_without_appsflyer_id_or_time_is_accepted(client, appsflyer):
    query = fill_macros(BASE_SPEC_INSTALL, BASE_SPEC_VALUES, MACRO)

    response = get(client, appsflyer, query)

    assert response.json()["status"] == "accepted"
    event = processed(response)
    assert (event.kind, event.click_id, event.gaid, event.country) == ("install", CLICK, GAID, "DE")
    assert (event.mmp_device_id, event.occurred_at, event.platform) == ("", None, "android")
    assert Postback.objects.get().dedup_key == f"af:clickid:{CLICK}:install:"
    # No time from the sender: the install happened when it reached us.
    assert conversion_of(event).occurred_at == Postback.objects.get().received_at


def test_without_appsflyer_id_a_retry_is_a_duplicate_and_a_second_event_is_not(client, appsflyer):
    # given: the device's install, as the base spec sends it
    install = fill_macros(BASE_SPEC_INSTALL, BASE_SPEC_VALUES, MACRO)
    # Event time: "yyyy-mm-dd hh:mm:ss.sss" in UTC (Push API V2.0 article, "Format of
    # timestamp fields"); the partner template adds the in-app event macros.
    purchase = f"{install}&event_name=af_purchase&event_time=2023-11-03%2000%3A49%3A04.897"
    later = f"{install}&event_name=af_purchase&event_time=2023-11-04%2010%3A00%3A00.000"

    # when
    first = get(client, appsflyer, install)
    retry = get(client, appsflyer, install)
    bought = get(client, appsflyer, purchase)
    bought_again = get(client, appsflyer, purchase)
    bought_later = get(client, appsflyer, later)

    # then
    assert retry.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert bought.json()["status"] == "accepted"
    assert bought_again.json() == {"status": "duplicate", "id": bought.json()["id"]}
    assert bought_later.json()["status"] == "accepted"
    assert Postback.objects.count() == 3
    event = processed(bought)
    assert (event.kind, event.event_name) == ("event", "af_purchase")
    assert event.occurred_at == utc(2023, 11, 3, 0, 49, 4, 897000)


# https://support.appsflyer.com/hc/en-us/articles/207273946-Postback-macros-for-ad-networks
# (older, parenthesised macros: "&IDFA=(idfa)"; (install-unix-ts) "in UNIX time";
# (event-name), (monetary) "Event value in original currency", (currency)). Values made up.
LEGACY_TEMPLATE = (
    "clickid={clickid}&IDFA=(idfa)&appsflyer-device-id=(appsflyer-device-id)"
    "&install-unix-ts=(install-unix-ts)&event-name=(event-name)&event-time=(event-time)"
    "&monetary=(monetary)&currency=(currency)&country-code=(country-code)"
)


def test_the_legacy_parenthesised_macros_are_read(client, appsflyer):
    values = {
        "clickid": CLICK,
        "idfa": IDFA,
        "appsflyer-device-id": "1698811503838-6471005703857226630",
        "install-unix-ts": "1698811507",
        "event-name": "af_first_deposit",
        "event-time": "2023-11-03 00:49:04.897",
        "monetary": "50",
        "currency": "EUR",
        "country-code": "DE",
    }
    query = fill_macros(fill_macros(LEGACY_TEMPLATE, values, MACRO), values, r"\(([a-z-]+)\)")

    event = processed(get(client, appsflyer, query))

    assert (event.kind, event.event_name, event.conversion_type) == (
        "event",
        "af_first_deposit",
        "ftd",
    )
    assert (event.idfa, event.mmp_device_id) == (IDFA, "1698811503838-6471005703857226630")
    assert event.installed_at == utc(2023, 11, 1, 4, 5, 7)  # install-unix-ts, Unix seconds
    assert (event.revenue, event.currency) == (Decimal("50"), "EUR")


def test_a_macro_appsflyer_left_unfilled_is_absent(client, appsflyer):
    query = f"clickid={CLICK}&idfa=(idfa)&advertising_id={GAID}&install_unix_ts=1698811507"

    event = processed(get(client, appsflyer, query))

    assert (event.idfa, event.gaid) == ("", GAID)


# https://support.appsflyer.com/hc/en-us/articles/115004744123-Rejected-install-postbacks-to-integrated-partners
# "For example: reject_reason=site_blacklist&reject_reason_value="1123456"".
def test_a_rejected_install_postback_is_recorded_and_never_paid(client, appsflyer):
    query = (
        f"clickid={CLICK}&advertising_id={GAID}&install_unix_ts=1698811507"
        f"&reject_reason=site_blacklist&reject_reason_value={quote(chr(34) + '1123456' + chr(34))}"
    )

    event = processed(get(client, appsflyer, query))

    assert (event.kind, event.blocked_reason) == ("rejected", 'site_blacklist:"1123456"')
    assert conversion_of(event).status == Conversion.Status.REJECTED


# https://support.appsflyer.com/hc/en-us/articles/207034356 (Push API V2.0: POST with a JSON
# body; timestamps "yyyy-mm-dd hh:mm:ss.sss" in UTC; conversion_type Install / Re-engagement /
# Reinstall) and https://support.appsflyer.com/hc/en-us/articles/360016751637 (event_value:
# "attributes with values ... in JSON format"). Values made up in those formats.
PUSH_API_EVENT = {
    "appsflyer_id": "1698811503838-6471005703857226630",
    "event_name": "af_purchase",
    "event_time": "2023-11-03 00:49:04.897",
    "install_time": "2023-11-01 04:05:07.000",
    "event_revenue": "9.99",
    "event_revenue_currency": "USD",
    "event_revenue_usd": "9.99",
    "event_value": json.dumps({"af_revenue": "9.99", "af_currency": "USD", "af_order_id": "o-7"}),
    "conversion_type": "Install",
    "campaign_type": "UA",
    "is_retargeting": False,
    "media_source": "portal_int",
    "platform": "ios",
    "idfa": IDFA,
    "country_code": "US",
    "api_version": "2.0",
}


def test_a_push_api_in_app_event_by_post_json(client, appsflyer):
    event = processed(post_json(client, appsflyer, PUSH_API_EVENT))

    assert (event.kind, event.event_name) == ("event", "af_purchase")
    assert event.occurred_at == utc(2023, 11, 3, 0, 49, 4, 897000)
    assert event.installed_at == utc(2023, 11, 1, 4, 5, 7)
    assert (event.revenue, event.currency, event.txid) == (Decimal("9.99"), "USD", "o-7")
    assert (event.is_retargeting, event.platform, event.country) == (False, "ios", "US")


def test_a_push_api_event_value_alone_carries_the_revenue(client, appsflyer):
    body = {k: v for k, v in PUSH_API_EVENT.items() if not k.startswith("event_revenue")}
    body["event_value"] = json.dumps({"af_revenue": 4.99, "af_currency": "EUR"})

    event = processed(post_json(client, appsflyer, body))

    assert (event.revenue, event.currency) == (Decimal("4.99"), "EUR")


def test_a_push_api_retargeting_message_with_string_booleans_is_a_reattribution(client, appsflyer):
    body = {
        **{k: v for k, v in PUSH_API_EVENT.items() if not k.startswith("event")},
        "event_name": "re-engagement",
        "event_time": "2023-11-05 08:00:00.000",
        "conversion_type": "Re-engagement",
        "campaign_type": "Retargeting",
        "is_retargeting": "true",
    }

    event = processed(post_json(client, appsflyer, body))

    assert (event.kind, event.is_retargeting) == ("reattribution", True)
    assert event.occurred_at == utc(2023, 11, 1, 4, 5, 7)  # the (re-)install time
