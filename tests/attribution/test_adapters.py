"""The per-source postback adapters: reference examples, leniency, errors, and fuzzing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from attribution.parsing.adapters import (
    ADAPTERS,
    Adapter,
    NormalisedEvent,
    PostbackError,
    SourceSettings,
    get_adapter,
)
from attribution.parsing.adapters.fields import (
    is_unfilled_macro,
    parse_bool,
    parse_decimal,
    parse_time,
)

CLICK = "01JD3K9Q8X4M2N7P5R6S8T0V1W"
AF_ID = "1698811503838-6471005703857226630"
IDFA = "8C6CBC0D-5F43-4765-A6E6-84DFF3D24707"
GAID = "38400000-8cf0-11bd-b23e-10b96e40000d"


def query(url: str) -> dict[str, str]:
    """The query string of a reference URL as the view would hand it over."""
    return dict(parse_qsl(url.split("?", 1)[1], keep_blank_values=True))


def parse(source: str, payload: Mapping[str, Any]) -> NormalisedEvent:
    return get_adapter(source).parse(payload)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --- AppsFlyer ---------------------------------------------------------------------------------

AF_INSTALL_URL = (
    "/postbacks/appsflyer/<token>/?clickid=01JD3K9Q8X4M2N7P5R6S8T0V1W&af_siteid=42"
    "&idfa=8C6CBC0D-5F43-4765-A6E6-84DFF3D24707&appsflyer_id=1698811503838-6471005703857226630"
    "&app_id=id1234567890&platform=ios&country_code=DE&install_unix_ts=1698811507"
    "&attributed_touch_type=click&attributed_touch_time=2023-11-01%2003%3A48%3A33.000"
    "&is_retargeting=false"
)
AF_EVENT_URL = (
    "/postbacks/appsflyer/<token>/?clickid=01JD3K9Q8X4M2N7P5R6S8T0V1W"
    "&appsflyer_id=1698811503838-6471005703857226630&app_id=id1234567890&platform=ios"
    "&event_name=af_purchase&event_revenue=4.99&event_revenue_currency=EUR"
    "&event_time=2023-11-03%2000%3A49%3A04.897&install_unix_ts=1698811507"
)


def test_appsflyer_install_from_the_reference_example() -> None:
    event = parse("appsflyer", query(AF_INSTALL_URL))

    assert event == NormalisedEvent(
        source="appsflyer",
        kind="install",
        event_name="install",
        dedup_key=f"af:{AF_ID}:install:2023-11-01T04:05:07Z",
        occurred_at=utc(2023, 11, 1, 4, 5, 7),
        click_id=CLICK,
        mmp_device_id=AF_ID,
        idfa=IDFA,
        app_id="id1234567890",
        platform="ios",
        country="DE",
        touch_type="click",
        touch_time=utc(2023, 11, 1, 3, 48, 33),
        installed_at=utc(2023, 11, 1, 4, 5, 7),
        is_retargeting=False,
    )


def test_appsflyer_in_app_event_from_the_reference_example() -> None:
    event = parse("appsflyer", query(AF_EVENT_URL))

    assert event.kind == "event"
    assert event.event_name == "af_purchase"
    assert event.dedup_key == f"af:{AF_ID}:af_purchase:2023-11-03T00:49:04.897Z"
    assert event.occurred_at == utc(2023, 11, 3, 0, 49, 4, 897000)
    assert event.installed_at == utc(2023, 11, 1, 4, 5, 7)
    assert event.revenue == Decimal("4.99")
    assert str(event.revenue) == "4.99"
    assert event.currency == "EUR"
    assert event.click_id == CLICK
    assert event.mmp_device_id == AF_ID
    assert event.platform == "ios"


def test_appsflyer_legacy_hyphenated_template_names() -> None:
    event = parse(
        "appsflyer",
        {
            "clickid": CLICK,
            "appsflyer-device-id": AF_ID,
            "advertiserId": GAID.upper(),
            "event-name": "AF_PURCHASE",
            "monetary": "9,99",
            "currency": "usd",
            "install-unix-ts": "1698811507",
            "click-ts": "1698811400",
            "event-time": "1698990544",
        },
    )

    assert event.kind == "event"
    assert event.event_name == "af_purchase"
    assert event.mmp_device_id == AF_ID
    assert event.gaid == GAID
    assert event.platform == "android"
    assert event.revenue == Decimal("9.99")
    assert event.currency == "USD"
    assert event.touch_time == utc(2023, 11, 1, 4, 3, 20)
    assert event.occurred_at == utc(2023, 11, 3, 5, 49, 4)


def test_appsflyer_legacy_install_keys_on_install_unix_ts() -> None:
    event = parse("appsflyer", {"appsflyer-device-id": AF_ID, "install-unix-ts": "1698811507"})

    assert event.kind == "install"
    assert event.dedup_key == f"af:{AF_ID}:install:2023-11-01T04:05:07Z"


def test_appsflyer_push_api_v2_json_row() -> None:
    body = json.loads(
        """{
          "api_version": "2.0", "appsflyer_id": "1698811503838-6471005703857226630",
          "event_name": "install", "conversion_type": "install", "campaign_type": "ua",
          "event_source": "SDK", "media_source": "portal_int", "customer_user_id": "player-77",
          "device_model": "samsung::SM-G991B", "platform": "android",
          "advertising_id": "38400000-8CF0-11BD-B23E-10B96E40000D", "app_id": "com.example.casino",
          "install_time": "2023-11-01 04:05:07.123", "event_time": "2023-11-01 04:05:07.123",
          "is_retargeting": false, "is_primary_attribution": true, "ip": "203.0.113.9",
          "country_code": "br", "event_revenue": null, "clickid": "01JD3K9Q8X4M2N7P5R6S8T0V1W"
        }"""
    )
    event = parse("appsflyer", body)

    assert event.kind == "install"
    assert event.dedup_key == f"af:{AF_ID}:install:2023-11-01T04:05:07.123Z"
    assert event.occurred_at == utc(2023, 11, 1, 4, 5, 7, 123000)
    assert event.player_id == "player-77"
    assert event.gaid == GAID
    assert event.app_id == "com.example.casino"
    assert event.platform == "android"
    assert event.country == "BR"
    assert event.ip == "203.0.113.9"
    assert event.revenue is None
    assert event.click_id == CLICK
    assert event.is_retargeting is False


def test_appsflyer_push_api_json_numbers_are_exact_decimals() -> None:
    event = parse(
        "appsflyer",
        {
            "appsflyer_id": AF_ID,
            "event_name": "af_purchase",
            "event_time": "2023-11-03T00:49:04.897Z",
            "event_revenue": 4.99,
            "event_revenue_currency": "EUR",
        },
    )

    assert event.revenue == Decimal("4.99")
    assert isinstance(event.revenue, Decimal)


@pytest.mark.parametrize(
    "extra",
    [
        {"conversion_type": "re-engagement"},
        {"is_retargeting": "TRUE"},
        {"is_retargeting": True},
        {"is_retargeting": 1},
        {"campaign_type": "retargeting"},
    ],
)
def test_appsflyer_re_engagement_install_is_a_reattribution(extra: dict[str, Any]) -> None:
    event = parse("appsflyer", {"appsflyer_id": AF_ID, "install_unix_ts": 1698811507, **extra})

    assert event.kind == "reattribution"
    assert event.event_name == "re-engagement"
    assert event.is_retargeting is True
    assert event.dedup_key == f"af:{AF_ID}:re-engagement:2023-11-01T04:05:07Z"


def test_appsflyer_retargeting_in_app_event_stays_an_event() -> None:
    event = parse(
        "appsflyer",
        {
            "appsflyer_id": AF_ID,
            "event_name": "af_purchase",
            "event_time": "1698990544",
            "is_retargeting": "true",
        },
    )

    assert event.kind == "event"
    assert event.is_retargeting is True


def test_appsflyer_reinstall_is_an_install_named_reinstall() -> None:
    event = parse(
        "appsflyer",
        {"appsflyer_id": AF_ID, "conversion_type": "reinstall", "install_time": "1698811507"},
    )

    assert (event.kind, event.event_name) == ("install", "reinstall")


def test_appsflyer_blocked_install_is_rejected_with_the_reason() -> None:
    payload = query(AF_INSTALL_URL) | {
        "blocked_reason": "install_validation_rule",
        "blocked_reason_value": "geo_mismatch",
    }
    event = parse("appsflyer", payload)

    assert event.kind == "rejected"
    assert event.event_name == "install"
    assert event.blocked_reason == "install_validation_rule:geo_mismatch"
    assert event.click_id == CLICK


def test_appsflyer_unfilled_macros_are_absent() -> None:
    event = parse(
        "appsflyer",
        query(AF_EVENT_URL)
        | {
            "idfa": "(idfa)",
            "advertising_id": "(advertising_id)",
            "clickid": "{clickid}",
            "event_revenue": "(event_revenue)",
            "event_revenue_currency": "",
            "country_code": "%7Bcountry%7D",
            "customer_user_id": "${customer_user_id}",
        },
    )

    assert event.idfa == event.gaid == event.click_id == event.currency == event.country == ""
    assert event.player_id == ""
    assert event.revenue is None


def test_appsflyer_all_zero_idfa_is_absent() -> None:
    payload = query(AF_INSTALL_URL) | {"idfa": "00000000-0000-0000-0000-000000000000"}

    assert parse("appsflyer", payload).idfa == ""


def test_appsflyer_revenue_from_event_value_json_when_event_revenue_is_absent() -> None:
    event = parse(
        "appsflyer",
        {
            "appsflyer_id": AF_ID,
            "event_name": "af_purchase",
            "event_time": "1698990544",
            "event_value": '{"af_revenue": "12.50", "af_currency": "gbp", "af_order_id": "o-1"}',
        },
    )

    assert (event.revenue, event.currency, event.txid) == (Decimal("12.50"), "GBP", "o-1")


def test_appsflyer_usd_revenue_when_only_event_revenue_usd_is_sent() -> None:
    event = parse(
        "appsflyer",
        {
            "appsflyer_id": AF_ID,
            "event_name": "af_purchase",
            "event_time": "1698990544",
            "event_revenue_USD": "5.43",
        },
    )

    assert (event.revenue, event.currency) == (Decimal("5.43"), "USD")


def test_appsflyer_without_appsflyer_id_is_keyed_by_the_click_id() -> None:
    payload = query(AF_INSTALL_URL)
    del payload["appsflyer_id"]

    event = parse("appsflyer", payload)

    assert event.dedup_key == f"af:clickid:{CLICK}:install:2023-11-01T04:05:07Z"
    assert event.mmp_device_id == ""


def test_appsflyer_without_any_id_names_what_to_send() -> None:
    with pytest.raises(PostbackError, match=r"^appsflyer_id is missing \(send appsflyer_id, "):
        parse("appsflyer", {"install_unix_ts": "1698811507"})


def test_appsflyer_malformed_event_time_names_the_field_and_value() -> None:
    payload = query(AF_EVENT_URL) | {"event_time": "2023-13-45"}

    with pytest.raises(PostbackError, match=r"^event_time '2023-13-45' is not a time$"):
        parse("appsflyer", payload)


def test_appsflyer_install_without_any_time_is_keyed_by_its_device() -> None:
    event = parse("appsflyer", {"appsflyer_id": AF_ID})

    assert (event.occurred_at, event.dedup_key) == (None, f"af:{AF_ID}:install:")


def test_appsflyer_event_without_event_time_is_keyed_by_its_content() -> None:
    first = parse("appsflyer", {"appsflyer_id": AF_ID, "event_name": "af_purchase"})
    again = parse("appsflyer", {"event_name": "af_purchase", "appsflyer_id": AF_ID})
    other = parse("appsflyer", {"appsflyer_id": AF_ID, "event_name": "af_login"})

    assert first.occurred_at is None
    assert first.dedup_key == again.dedup_key != other.dedup_key


# --- Adjust ------------------------------------------------------------------------------------

ADJUST_EVENT_URL = (
    "/postbacks/adjust/<token>/?click_id=01JD3K9Q8X4M2N7P5R6S8T0V1W"
    "&gps_adid=38400000-8cf0-11bd-b23e-10b96e40000d&adid=18546f6171f67e29d1cb983322ad1329"
    "&tracker=abc123&activity_kind=event&created_at=1404214665&installed_at=1404214634"
    "&event=bkrfgq&event_name=ftd&revenue_float=50.00&currency=EUR"
)
ADID = "18546f6171f67e29d1cb983322ad1329"


def test_adjust_event_from_the_reference_example() -> None:
    event = parse("adjust", query(ADJUST_EVENT_URL))

    assert event == NormalisedEvent(
        source="adjust",
        kind="event",
        event_name="ftd",
        dedup_key=f"adjust:{ADID}:event:2014-07-01T11:37:45Z:bkrfgq",
        occurred_at=utc(2014, 7, 1, 11, 37, 45),
        click_id=CLICK,
        mmp_device_id=ADID,
        gaid=GAID,
        platform="android",
        revenue=Decimal("50.00"),
        currency="EUR",
        installed_at=utc(2014, 7, 1, 11, 37, 14),
        event_token="bkrfgq",
    )


def test_adjust_install_callback() -> None:
    event = parse(
        "adjust",
        {
            "click_id": CLICK,
            "adid": ADID,
            "idfa": IDFA.lower(),
            "activity_kind": "install",
            "created_at": "1404214634",
            "installed_at": "1404214634",
            "click_time": "1404214600",
            "country": "de",
            "os_name": "ios",
            "ip_address": "198.51.100.4",
            "event": "{event}",
        },
    )

    assert event.kind == "install"
    assert event.event_name == "install"
    assert event.dedup_key == f"adjust:{ADID}:install:2014-07-01T11:37:14Z:"
    assert event.idfa == IDFA
    assert event.platform == "ios"
    assert event.country == "DE"
    assert event.ip == "198.51.100.4"
    assert event.touch_time == utc(2014, 7, 1, 11, 36, 40)
    assert event.installed_at == utc(2014, 7, 1, 11, 37, 14)


def test_adjust_event_without_a_name_is_named_by_its_token() -> None:
    payload = query(ADJUST_EVENT_URL)
    del payload["event_name"]

    assert parse("adjust", payload).event_name == "bkrfgq"


def test_adjust_template_without_activity_kind_is_read_from_the_event_token() -> None:
    payload = query(ADJUST_EVENT_URL)
    del payload["activity_kind"]

    assert parse("adjust", payload).kind == "event"
    assert parse("adjust", {"adid": ADID, "created_at": "1404214634"}).kind == "install"


@pytest.mark.parametrize(
    ("activity", "reason", "event_name", "blocked"),
    [
        ("rejected_install", "too_many_engagements", "install", "too_many_engagements"),
        ("rejected_reattribution", "", "reattribution", "rejected_reattribution"),
    ],
)
def test_adjust_rejected_attribution_is_recorded_with_the_reason(
    activity: str, reason: str, event_name: str, blocked: str
) -> None:
    payload = {
        "adid": ADID,
        "activity_kind": activity,
        "created_at": "1404214665",
        "rejection_reason": reason or "{rejection_reason}",
        "click_id": CLICK,
    }
    event = parse("adjust", payload)

    assert (event.kind, event.event_name, event.blocked_reason) == ("rejected", event_name, blocked)
    assert event.dedup_key == f"adjust:{ADID}:{activity}:2014-07-01T11:37:45Z:"


def test_adjust_reattribution() -> None:
    event = parse(
        "adjust", {"adid": ADID, "activity_kind": "reattribution", "created_at": "1404214665"}
    )

    assert (event.kind, event.event_name, event.is_retargeting) == (
        "reattribution",
        "reattribution",
        True,
    )


@pytest.mark.parametrize("activity", ["session", "uninstall", "SESSION"])
def test_adjust_session_and_uninstall_are_events_named_after_the_activity(activity: str) -> None:
    event = parse("adjust", {"adid": ADID, "activity_kind": activity, "created_at": "1404214665"})

    assert (event.kind, event.event_name) == ("event", activity.lower())


def test_adjust_revenue_placeholder_is_in_cents() -> None:
    # help.adjust.com/en/article/ad-revenue-callbacks: {revenue} "(in cents)" 345,
    # {revenue_float} "(in whole currency units)" 3.99.
    payload = query(ADJUST_EVENT_URL)
    del payload["revenue_float"]
    payload["revenue"] = "499"

    assert parse("adjust", payload).revenue == Decimal("4.99")
    units = SourceSettings(revenue_unit="units")
    assert get_adapter("adjust").parse(payload, units).revenue == Decimal("499")


def test_adjust_without_adid_is_keyed_by_the_click_id_and_without_any_id_refused() -> None:
    payload = query(ADJUST_EVENT_URL)

    event = parse("adjust", payload | {"adid": "{adid}"})

    assert event.dedup_key == f"adjust:click_id:{CLICK}:event:2014-07-01T11:37:45Z:bkrfgq"
    with pytest.raises(PostbackError, match=r"^adid is missing \(send adid, "):
        parse("adjust", {"activity_kind": "install", "created_at": "1404214665"})


# --- Branch ------------------------------------------------------------------------------------


def branch_install() -> dict[str, Any]:
    return {
        "name": "INSTALL",
        "id": "1234567890123456789",
        "timestamp": 1698811507123,
        "attributed": True,
        "last_attributed_touch_type": "CLICK",
        "last_attributed_touch_timestamp": 1698811413000,
        "user_data": {
            "os": "IOS",
            "platform": "IOS_APP",
            "idfa": IDFA.lower(),
            "idfv": "c0ffee00-1111-2222-3333-444455556666",
            "developer_identity": "dev-42",
            "ip": "203.0.113.7",
            "user_agent": "Mozilla/5.0",
            "geo_country_code": "de",
        },
        "last_attributed_touch_data": {
            "~id": "987",
            "~campaign": "autumn",
            "~channel": "portal",
            "~click_id": "branch-own-click",
            "+click_timestamp": 1698811413,
            "+url": "https://example.app.link/abc",
            "click_id": CLICK,
        },
        "custom_data": {"anything": ["goes", {"here": 1}]},
    }


def test_branch_install_webhook_with_nested_json_and_ms_timestamps() -> None:
    event = parse("branch", branch_install())

    assert event == NormalisedEvent(
        source="branch",
        kind="install",
        event_name="install",
        dedup_key="branch:1234567890123456789",
        occurred_at=utc(2023, 11, 1, 4, 5, 7, 123000),
        click_id=CLICK,
        mmp_device_id="dev-42",
        idfa=IDFA,
        idfv="C0FFEE00-1111-2222-3333-444455556666",
        platform="ios",
        country="DE",
        touch_type="click",
        touch_time=utc(2023, 11, 1, 4, 3, 33),
        installed_at=utc(2023, 11, 1, 4, 5, 7, 123000),
        ip="203.0.113.7",
    )


def test_branch_click_timestamp_in_seconds_when_the_ms_touch_timestamp_is_absent() -> None:
    body = branch_install()
    del body["last_attributed_touch_timestamp"]

    assert parse("branch", body).touch_time == utc(2023, 11, 1, 4, 3, 33)


def test_branch_tilde_click_id_when_our_link_key_is_absent() -> None:
    body = branch_install()
    del body["last_attributed_touch_data"]["click_id"]

    assert parse("branch", body).click_id == "branch-own-click"


def test_branch_purchase_with_event_data() -> None:
    body = branch_install() | {
        "name": "purchase",
        "id": "555",
        "event_data": {"transaction_id": "tx-9", "revenue": 19.99, "currency": "eur"},
        "user_data": {"os": "ANDROID", "aaid": GAID.upper()},
    }
    event = parse("branch", body)

    assert (event.kind, event.event_name) == ("event", "purchase")
    assert (event.revenue, event.currency, event.txid) == (Decimal("19.99"), "EUR", "tx-9")
    assert (event.gaid, event.platform) == (GAID, "android")
    assert event.installed_at is None
    assert event.dedup_key == "branch:555"


@pytest.mark.parametrize(
    ("name", "kind", "event_name"),
    [
        ("OPEN", "event", "open"),
        ("Reinstall", "install", "reinstall"),
        ("ftd_custom", "event", "ftd_custom"),
    ],
)
def test_branch_event_names_are_case_insensitive(name: str, kind: str, event_name: str) -> None:
    event = parse("branch", {"name": name, "id": "1"})

    assert (event.kind, event.event_name) == (kind, event_name)


def test_branch_empty_objects_may_be_left_out() -> None:
    event = parse("branch", {"name": "OPEN", "id": "42", "timestamp": "1698811507123"})

    assert event.click_id == event.idfa == event.mmp_device_id == ""
    assert event.occurred_at == utc(2023, 11, 1, 4, 5, 7, 123000)


def test_branch_nested_objects_as_json_text_in_a_form_field() -> None:
    body = branch_install()
    form = {
        key: json.dumps(value) if isinstance(value, dict) else value for key, value in body.items()
    }

    assert parse("branch", form) == parse("branch", body)


def test_branch_flat_get_template_with_unfilled_freemarker() -> None:
    event = parse(
        "branch",
        {
            "name": "INSTALL",
            "id": "77",
            "click_id": CLICK,
            "idfa": "${(user_data.idfa)!}",
            "aaid": GAID,
        },
    )

    assert (event.click_id, event.idfa, event.gaid) == (CLICK, "", GAID)


def test_branch_missing_id_and_non_object_user_data_are_errors() -> None:
    with pytest.raises(PostbackError, match=r"^id is missing \(send id, or user_data"):
        parse("branch", {"name": "INSTALL"})
    with pytest.raises(PostbackError, match=r"^name is missing$"):
        parse("branch", {"id": "1"})
    with pytest.raises(PostbackError, match=r"^user_data is not an object$"):
        parse("branch", {"id": "1", "name": "OPEN", "user_data": 5})
    with pytest.raises(PostbackError, match=r"^event_data\.revenue 'lots' is not a number$"):
        parse("branch", {"id": "1", "name": "x", "event_data": {"revenue": "lots"}})


# --- Singular ----------------------------------------------------------------------------------


def test_singular_install_with_unfilled_macros_keys_on_device_and_time() -> None:
    event = parse(
        "singular",
        {
            "click_id": CLICK,
            "clid": "{CLID}",
            "idfa": IDFA,
            "idfv": "{IDFV}",
            "aifa": "{AIFA}",
            "platform": "iOS",
            "country": "{ATTRIBUTION_COUNTRY}",
            "evtname": "__INSTALL__",
            "utc": "1698811507",
            "click_utc": "1698811413",
            "longname": "com.example.casino",
            "public_id": "1234567890",
        },
    )

    assert event.kind == "install"
    assert event.event_name == "install"
    assert event.dedup_key == f"singular:device:idfa:{IDFA}:install:2023-11-01T04:05:07Z"
    assert (event.click_id, event.idfa, event.idfv, event.gaid) == (CLICK, IDFA, "", "")
    assert event.platform == "ios"
    assert event.country == ""
    assert event.app_id == "com.example.casino"
    assert event.touch_time == utc(2023, 11, 1, 4, 3, 33)
    assert event.installed_at == utc(2023, 11, 1, 4, 5, 7)


def test_singular_event_keys_on_the_event_id() -> None:
    event = parse(
        "singular",
        {
            "cl": CLICK,
            "device_id": "sng-1",
            "aifa": GAID,
            "platform": "Android",
            "evtname": "Deposit",
            "amount": "25.00",
            "currency": "usd",
            "event_id": "evt-123",
            "utc": "2023-11-03T00:49:04Z",
        },
    )

    assert (event.kind, event.event_name) == ("event", "deposit")
    assert event.dedup_key == "singular:event:evt-123"
    assert (event.revenue, event.currency) == (Decimal("25.00"), "USD")
    assert (event.mmp_device_id, event.gaid, event.platform) == ("sng-1", GAID, "android")
    assert event.occurred_at == utc(2023, 11, 3, 0, 49, 4)


def test_singular_missing_event_name_is_an_install() -> None:
    event = parse("singular", {"evtname": "{EVTNAME}", "device_id": "d", "utc": "1698811507"})

    assert event.kind == "install"
    assert event.dedup_key == "singular:device:device_id:d:install:2023-11-01T04:05:07Z"


def test_singular_without_any_device_id_is_an_error_and_without_time_keyed_by_content() -> None:
    with pytest.raises(PostbackError, match=r"^device_id is missing"):
        parse("singular", {"evtname": "deposit", "utc": "1698811507"})
    event = parse("singular", {"evtname": "deposit", "idfa": IDFA})
    assert event.occurred_at is None
    assert event.dedup_key.startswith("singular:content:")


# --- Kochava -----------------------------------------------------------------------------------


def test_kochava_install() -> None:
    event = parse(
        "kochava",
        {
            "click_id": CLICK,
            "kochava_device_id": "KOCHAVA-DEV-1",
            "adid": GAID,
            "android_id": "9774d56d682e549c",
            "event_name": "_install",
            "event_time": "1698811507",
            "ip": "192.0.2.10",
            "network_name": "Portal",
        },
    )

    assert event.kind == "install"
    assert (
        event.dedup_key
        == "kochava:device:kochava_device_id:KOCHAVA-DEV-1:install:2023-11-01T04:05:07Z"
    )
    assert (event.click_id, event.mmp_device_id, event.gaid) == (CLICK, "KOCHAVA-DEV-1", GAID)
    assert (event.platform, event.ip) == ("android", "192.0.2.10")


def test_kochava_purchase_keys_on_event_id_then_transaction_id() -> None:
    payload = {
        "click_id": CLICK,
        "device_id": "KD2",
        "event_name": "Purchase",
        "event_value": "4.99",
        "currency": "EUR",
        "timestamp": "2023-11-03 00:49:04",
        "transaction_id": "GPA.1234",
        "event_id": "ev-9",
    }
    event = parse("kochava", payload)

    assert (event.kind, event.event_name) == ("event", "purchase")
    assert event.dedup_key == "kochava:event_id:ev-9"
    assert (event.revenue, event.currency, event.txid) == (Decimal("4.99"), "EUR", "GPA.1234")
    del payload["event_id"]
    assert parse("kochava", payload).dedup_key == "kochava:transaction_id:GPA.1234"


def test_kochava_free_text_event_value_is_not_revenue_nor_an_error() -> None:
    event = parse(
        "kochava",
        {
            "device_id": "KD",
            "event_name": "level",
            "event_value": '{"level": 3}',
            "time": "1698811507",
        },
    )

    assert event.revenue is None


# --- s2s (operator's backend) ------------------------------------------------------------------


def test_s2s_deposit_with_canonical_names() -> None:
    event = parse(
        "s2s",
        {
            "click_id": CLICK,
            "event": "FTD",
            "amount": "100.00",
            "currency": "eur",
            "txid": "dep-1",
            "player_id": "p-9",
            "status": "approved",
            "country": "mt",
        },
    )

    assert event == NormalisedEvent(
        source="s2s",
        kind="event",
        event_name="ftd",
        dedup_key="s2s:dep-1:approved",
        occurred_at=None,
        click_id=CLICK,
        platform="web",
        revenue=Decimal("100.00"),
        currency="EUR",
        country="MT",
        player_id="p-9",
        txid="dep-1",
        status="approved",
    )


@pytest.mark.parametrize(
    ("click_key", "event_key", "amount_key", "txid_key"),
    [
        ("clickid", "goal", "sum", "action_id"),
        ("transaction_id", "action", "amount", "order_id"),
        ("aff_click_id", "event", "sum", "txid"),
    ],
)
def test_s2s_industry_aliases(
    click_key: str, event_key: str, amount_key: str, txid_key: str
) -> None:
    event = parse(
        "s2s", {click_key: CLICK, event_key: "deposit", amount_key: "5,5", txid_key: "T1"}
    )

    assert (event.click_id, event.event_name, event.revenue, event.txid) == (
        CLICK,
        "deposit",
        Decimal("5.5"),
        "T1",
    )
    assert event.dedup_key == "s2s:T1"


@pytest.mark.parametrize(
    ("sent", "status"),
    [
        ("1", "approved"),
        ("2", "pending"),
        ("3", "declined"),
        ("5", "pending"),
        (1, "approved"),
        ("Declined", "declined"),
        ("PENDING", "pending"),
    ],
)
def test_s2s_status_words_and_affise_numbers(sent: object, status: str) -> None:
    event = parse("s2s", {"event": "deposit", "txid": "T", "status": sent})

    assert event.status == status
    # A retry of the report is a repeat; a later report with another status is not.
    assert event.dedup_key == f"s2s:T:{status}"


def test_s2s_missing_txid_is_an_error() -> None:
    with pytest.raises(PostbackError, match=r"^txid is missing$"):
        parse("s2s", {"click_id": CLICK, "event": "deposit", "amount": "10", "txid": "{txid}"})


def test_s2s_missing_event_is_reported_before_txid() -> None:
    with pytest.raises(PostbackError, match=r"^event is missing$"):
        parse("s2s", {"click_id": CLICK, "amount": "10"})
    with pytest.raises(PostbackError, match=r"^event is missing$"):
        parse("s2s", {"click_id": CLICK, "txid": "T"})


def test_s2s_malformed_amount_and_status_name_the_field() -> None:
    with pytest.raises(PostbackError, match=r"^amount 'abc' is not a number$"):
        parse("s2s", {"event": "deposit", "txid": "T", "amount": "abc"})
    with pytest.raises(PostbackError, match=r"^sum 'abc' is not a number$"):
        parse("s2s", {"event": "deposit", "txid": "T", "sum": "abc"})
    with pytest.raises(PostbackError, match=r"^status 'maybe' is not one of"):
        parse("s2s", {"event": "deposit", "txid": "T", "status": "maybe"})
    with pytest.raises(PostbackError, match=r"^currency 'euro' is not a 3-letter currency code$"):
        parse("s2s", {"event": "deposit", "txid": "T", "currency": "euro"})


def test_s2s_install_is_an_install_and_platform_follows_device_ids() -> None:
    event = parse("s2s", {"event": "install", "txid": "I1", "gaid": GAID, "time": "1698811507"})

    assert (event.kind, event.platform, event.occurred_at) == (
        "install",
        "android",
        utc(2023, 11, 1, 4, 5, 7),
    )


def test_s2s_colons_in_txid_cannot_forge_another_key() -> None:
    assert parse("s2s", {"event": "d", "txid": "a:b"}).dedup_key == "s2s:a%3Ab"


# --- shared leniency ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("1", True),
        ("yes", True),
        ("false", False),
        ("FALSE", False),
        ("0", False),
        ("no", False),
    ],
)
def test_lenient_booleans(value: str, expected: bool) -> None:
    assert parse_bool("flag", value) is expected


def test_json_booleans_and_numbers_are_booleans() -> None:
    for sent, expected in [(True, True), (False, False), (1, True), (0, False)]:
        payload = {"appsflyer_id": AF_ID, "install_unix_ts": "1698811507", "is_retargeting": sent}
        assert parse("appsflyer", payload).is_retargeting is expected


def test_a_boolean_that_is_not_one_names_the_field() -> None:
    with pytest.raises(PostbackError, match=r"^is_retargeting 'maybe' is not a boolean"):
        parse("appsflyer", {"appsflyer_id": AF_ID, "install_unix_ts": 1, "is_retargeting": "maybe"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1698811507", utc(2023, 11, 1, 4, 5, 7)),
        ("1698811507123", utc(2023, 11, 1, 4, 5, 7, 123000)),
        ("1698811507.5", utc(2023, 11, 1, 4, 5, 7, 500000)),
        ("2023-11-01 04:05:07", utc(2023, 11, 1, 4, 5, 7)),
        ("2023-11-01 04:05:07.123", utc(2023, 11, 1, 4, 5, 7, 123000)),
        ("2023-11-01T04:05:07Z", utc(2023, 11, 1, 4, 5, 7)),
        ("2023-11-01T06:05:07+02:00", utc(2023, 11, 1, 4, 5, 7)),
        ("2023-11-01T04:05:07.123456789Z", utc(2023, 11, 1, 4, 5, 7, 123456)),
        ("2023-11-01 04:05:07 UTC", utc(2023, 11, 1, 4, 5, 7)),
        ("2023-11-01%2004%3A05%3A07", utc(2023, 11, 1, 4, 5, 7)),
    ],
)
def test_lenient_times_are_aware_utc(value: str, expected: datetime) -> None:
    parsed = parse_time("t", value)

    assert parsed == expected
    assert parsed is not None and parsed.tzinfo is UTC


@pytest.mark.parametrize("value", ["2023-13-45", "yesterday", "99999999999999999999", "-5", "5"])
def test_times_that_are_not_times_are_errors(value: str) -> None:
    with pytest.raises(
        PostbackError, match=f"^t '{re.escape(value)}' is (not a time|out of range)"
    ):
        parse_time("t", value)


def test_unix_zero_means_unknown() -> None:
    assert parse_time("t", "0") is None


@pytest.mark.parametrize(
    "value",
    [
        "{sub4}",
        "{CLID}",
        "{cl?Network}",
        "(idfa)",
        "(install-unix-ts)",
        "${(user_data.idfa)!}",
        "%7Bsub%7D",
        "%7bsub4%7d",
        "{{click_id}}",
        "[sub1]",
        "null",
        "undefined",
        "{}",
    ],
)
def test_unfilled_macros_are_recognised(value: str) -> None:
    assert is_unfilled_macro(value)


@pytest.mark.parametrize("value", [CLICK, "id1234567890", '{"af_revenue": "1"}', "a{b}", "4.99"])
def test_real_values_are_not_macros(value: str) -> None:
    assert not is_unfilled_macro(value)


@pytest.mark.parametrize("macro", ["{click_id}", "(clickid)", "", "  ", "%7Bclick_id%7D"])
def test_unfilled_click_id_is_absent_not_an_error(macro: str) -> None:
    assert parse("s2s", {"event": "reg", "txid": "T", "click_id": macro}).click_id == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("4.99", Decimal("4.99")),
        ("4,99", Decimal("4.99")),
        ("-3.10", Decimal("-3.10")),
        ("1e2", Decimal("100")),
        (".5", Decimal("0.5")),
        ("0", Decimal("0")),
    ],
)
def test_amounts_are_exact_decimals(value: str, expected: Decimal) -> None:
    parsed = parse_decimal("amount", value)

    assert parsed == expected
    assert str(parsed) == str(expected)


@pytest.mark.parametrize(
    "value",
    ["NaN", "nan", "Infinity", "-inf", "1e999", "1e99", "1,234.56", "4.99 EUR", "0x10", "1_000"],
)
def test_amounts_that_are_not_sane_numbers_are_errors(value: str) -> None:
    with pytest.raises(PostbackError, match=r"^amount '.*' is (not a number|too large)"):
        parse_decimal("amount", value)


def test_non_finite_json_numbers_are_errors() -> None:
    with pytest.raises(PostbackError, match=r"^amount is not a finite number$"):
        parse("s2s", {"event": "deposit", "txid": "T", "amount": float("nan")})


def test_list_values_take_the_last_present_one() -> None:
    event = parse(
        "s2s", {"event": ["reg", "deposit"], "txid": ["T1", "T2", "{txid}"], "click_id": []}
    )

    assert (event.event_name, event.txid, event.click_id) == ("deposit", "T2", "")


class FakeQueryDict(Mapping[str, str]):
    """What Django's QueryDict looks like to an adapter: last value by key, all by getlist."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._pairs = pairs

    def __getitem__(self, key: str) -> str:
        values = self.getlist(key)
        if not values:
            raise KeyError(key)
        return values[-1]

    def __iter__(self) -> Iterator[str]:
        return iter(dict(self._pairs))

    def __len__(self) -> int:
        return len(dict(self._pairs))

    def getlist(self, key: str) -> list[str]:
        return [v for k, v in self._pairs if k == key]


def test_query_dict_like_payloads_are_read_through_getlist() -> None:
    payload = FakeQueryDict([*parse_qsl(AF_EVENT_URL.split("?", 1)[1]), ("clickid", "(clickid)")])

    assert parse("appsflyer", payload).click_id == CLICK


def test_parameter_names_match_case_insensitively() -> None:
    event = parse("singular", {"EVTNAME": "deposit", "IDFA": IDFA, "UTC": "1698811507"})

    assert (event.event_name, event.idfa) == ("deposit", IDFA)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"nested": 1}, "^txid is an object, expected a single value$"),
        ([["a"]], "^txid is a nested list, expected a single value$"),
        (b"bytes", "^txid is a bytes, expected a single value$"),
        ("a\x00b", "^txid contains control characters$"),
        ("x" * 256, "^txid is longer than 255 characters$"),
    ],
)
def test_junk_values_are_postback_errors(value: object, message: str) -> None:
    with pytest.raises(PostbackError, match=message):
        parse("s2s", {"event": "deposit", "txid": value})


def test_an_integer_too_long_to_print_is_a_postback_error() -> None:
    with pytest.raises(PostbackError, match=r"^amount is too long a number$"):
        parse("s2s", {"event": "deposit", "txid": "T", "amount": 10**5000})


@pytest.mark.parametrize("source", sorted(ADAPTERS))
def test_a_payload_that_is_not_a_mapping_is_a_postback_error(source: str) -> None:
    with pytest.raises(PostbackError, match="not a set of named parameters"):
        get_adapter(source).parse(["not", "a", "mapping"])  # type: ignore[arg-type]


# --- registry ----------------------------------------------------------------------------------


def test_registry_holds_one_adapter_per_source() -> None:
    assert set(ADAPTERS) == {"appsflyer", "adjust", "branch", "singular", "kochava", "s2s"}
    for source, adapter in ADAPTERS.items():
        assert adapter.source == source
        assert isinstance(adapter, Adapter)
        assert get_adapter(source) is adapter


def test_unknown_source_is_a_key_error() -> None:
    with pytest.raises(KeyError):
        get_adapter("tune")


def test_adapters_import_no_django() -> None:
    code = (
        "import sys, attribution.parsing.adapters; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True)

    assert result.returncode == 0, result.stderr.decode()


# --- fuzzing: any dict in, a NormalisedEvent or a PostbackError out ----------------------------

KNOWN_NAMES: dict[str, list[str]] = {
    "appsflyer": [
        "appsflyer_id",
        "appsflyer-device-id",
        "event_name",
        "event-name",
        "conversion_type",
        "campaign_type",
        "is_retargeting",
        "install_unix_ts",
        "install-unix-ts",
        "install_time",
        "event_time",
        "blocked_reason",
        "blocked_reason_value",
        "event_revenue",
        "monetary",
        "event_revenue_currency",
        "currency",
        "event_revenue_USD",
        "event_value",
        "clickid",
        "advertising_id",
        "advertiserId",
        "idfa",
        "idfv",
        "app_id",
        "platform",
        "country_code",
        "attributed_touch_type",
        "attributed_touch_time",
        "click-ts",
        "customer_user_id",
        "ip",
    ],
    "adjust": [
        "adid",
        "activity_kind",
        "event",
        "event_name",
        "created_at",
        "installed_at",
        "revenue_float",
        "revenue",
        "currency",
        "reporting_revenue",
        "reporting_currency",
        "revenue_usd",
        "rejection_reason",
        "click_id",
        "gps_adid",
        "idfa",
        "idfv",
        "app_id",
        "os_name",
        "country",
        "ip_address",
        "click_time",
        "engagement_type",
        "is_reattributed",
    ],
    "branch": [
        "id",
        "name",
        "timestamp",
        "user_data",
        "event_data",
        "last_attributed_touch_data",
        "last_attributed_touch_type",
        "last_attributed_touch_timestamp",
        "click_id",
        "aaid",
        "idfa",
        "idfv",
        "os",
        "platform",
        "developer_identity",
        "geo_country_code",
        "ip",
        "revenue",
        "currency",
        "revenue_in_usd",
        "transaction_id",
        "~click_id",
        "+click_timestamp",
        "app_id",
    ],
    "singular": [
        "evtname",
        "event_name",
        "event_id",
        "device_id",
        "idfa",
        "idfv",
        "aifa",
        "andi",
        "click_id",
        "cl",
        "clid",
        "utc",
        "utcm",
        "time",
        "install_utc",
        "click_utc",
        "amount",
        "currency",
        "longname",
        "public_id",
        "platform",
        "country",
        "ip",
        "is_reengagement",
    ],
    "kochava": [
        "event_name",
        "event_id",
        "transaction_id",
        "kochava_device_id",
        "device_id",
        "idfa",
        "idfv",
        "adid",
        "android_id",
        "click_id",
        "event_time",
        "timestamp",
        "install_time",
        "click_time",
        "revenue",
        "event_value",
        "currency",
        "app_id",
        "platform",
        "country",
        "ip",
    ],
    "s2s": [
        "click_id",
        "clickid",
        "transaction_id",
        "aff_click_id",
        "event",
        "goal",
        "action",
        "amount",
        "sum",
        "currency",
        "txid",
        "action_id",
        "order_id",
        "player_id",
        "status",
        "country",
        "platform",
        "ip",
        "time",
        "idfa",
        "gaid",
    ],
}
ALL_NAMES = sorted({name for names in KNOWN_NAMES.values() for name in names})

INTERESTING_TEXT = st.sampled_from(
    [
        "",
        " ",
        "{sub4}",
        "(idfa)",
        "${x}",
        "%7Bsub%7D",
        "null",
        "true",
        "FALSE",
        "1",
        "0",
        "5",
        "1698811507",
        "1698811507123",
        "2023-11-03 00:49:04.897",
        "2023-11-03T00:49:04Z",
        "2023-13-45",
        "4.99",
        "4,99",
        "NaN",
        "Infinity",
        "1e999",
        "1e-99",
        "abc",
        "EUR",
        "euro",
        "ios",
        "ANDROID",
        "install",
        "INSTALL",
        "__INSTALL__",
        "_install",
        "re-engagement",
        "reinstall",
        "rejected_install",
        "event",
        "session",
        "af_purchase",
        IDFA,
        GAID,
        "00000000-0000-0000-0000-000000000000",
        "a\x00b",
        '{"af_revenue": "4.99"}',
        "[1,2]",
        '{"idfa": "' + IDFA + '"}',
        "declined",
        "approved",
        "203.0.113.9",
        "x" * 300,
    ]
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.sampled_from([-(2**70), 2**53 + 1])
    | st.floats()
    | st.decimals()
    | st.text(max_size=20)
    | INTERESTING_TEXT
)
VALUES = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(ALL_NAMES) | st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=10,
)


def payloads(source: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = st.sampled_from(KNOWN_NAMES[source]) | st.text(max_size=12)
    return st.dictionaries(keys, VALUES, max_size=14)


def check_total(source: str, payload: dict[str, Any]) -> None:
    """The adapter answers with an event or a PostbackError, and an event keeps its promises."""
    try:
        event = get_adapter(source).parse(payload)
    except PostbackError as error:
        assert str(error)
        return
    assert isinstance(event, NormalisedEvent)
    assert event.source == source
    assert event.kind in {"install", "event", "reattribution", "rejected"}
    assert event.dedup_key.startswith({"appsflyer": "af:"}.get(source, f"{source}:"))
    for moment in (event.occurred_at, event.touch_time, event.installed_at):
        assert moment is None or moment.tzinfo is UTC
    assert event.revenue is None or (
        isinstance(event.revenue, Decimal) and event.revenue.is_finite()
    )
    assert re.fullmatch(r"([A-Z]{3})?", event.currency)
    assert re.fullmatch(r"([A-Z]{2})?", event.country)
    assert event.platform in {"ios", "android", "web", ""}
    assert event.gaid == event.gaid.lower() and event.idfa == event.idfa.upper()
    assert event.event_name == event.event_name.lower()
    assert get_adapter(source).parse(payload) == event


FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(payload=payloads("appsflyer"))
def test_appsflyer_never_fails_with_anything_but_a_postback_error(payload: dict[str, Any]) -> None:
    check_total("appsflyer", payload)


@FUZZ
@given(payload=payloads("adjust"))
def test_adjust_never_fails_with_anything_but_a_postback_error(payload: dict[str, Any]) -> None:
    check_total("adjust", payload)


@FUZZ
@given(payload=payloads("branch"))
def test_branch_never_fails_with_anything_but_a_postback_error(payload: dict[str, Any]) -> None:
    check_total("branch", payload)


@FUZZ
@given(payload=payloads("singular"))
def test_singular_never_fails_with_anything_but_a_postback_error(payload: dict[str, Any]) -> None:
    check_total("singular", payload)


@FUZZ
@given(payload=payloads("kochava"))
def test_kochava_never_fails_with_anything_but_a_postback_error(payload: dict[str, Any]) -> None:
    check_total("kochava", payload)


@FUZZ
@given(payload=payloads("s2s"))
def test_s2s_never_fails_with_anything_but_a_postback_error(payload: dict[str, Any]) -> None:
    check_total("s2s", payload)


@FUZZ
@given(
    user_data=st.dictionaries(st.sampled_from(KNOWN_NAMES["branch"]), VALUES, max_size=8),
    touch=st.dictionaries(st.sampled_from(KNOWN_NAMES["branch"]), VALUES, max_size=8),
    data=st.dictionaries(st.sampled_from(KNOWN_NAMES["branch"]), VALUES, max_size=8),
)
def test_branch_nested_objects_never_fail_with_anything_but_a_postback_error(
    user_data: dict[str, Any], touch: dict[str, Any], data: dict[str, Any]
) -> None:
    check_total(
        "branch",
        {
            "id": "1",
            "name": "PURCHASE",
            "user_data": user_data,
            "last_attributed_touch_data": touch,
            "event_data": data,
        },
    )
