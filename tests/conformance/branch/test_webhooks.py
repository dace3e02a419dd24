"""Branch webhooks: bodies copied from Branch's documentation and a recorded integration.

Branch's rules (help.branch.io/using-branch/docs/webhooks): POST JSON, ``timestamp`` in
milliseconds, link data (every ``~`` field and custom key) in ``last_attributed_touch_data``,
device data in ``user_data``, empty objects left out. None of these bodies has an event ``id``.
"""

import json

import pytest

from attribution.models import Postback
from tests.conformance.helpers import post_json, processed, utc
from tests.factories import PostbackSourceFactory

pytestmark = pytest.mark.django_db

# Branch's "Field-by-field guide for migrating from legacy webhooks", "Current event request
# body" for an install (mirror of docs.branch.io:
# https://github.com/dweekly/docs/blob/master/pages/exports/webhooks-migration-guide.md),
# trimmed of the deep-view keys; its table gives the time as "2018-06-27T17:06:05.665Z".
INSTALL = {
    "name": "INSTALL",
    "deep_linked": "true",
    "user_data": {
        "os": "IOS",
        "os_version": "10.0",
        "environment": "FULL_APP",
        "platform": "IOS_APP",
        "idfa": "27AFDDCC-15DA-3A32-EF33-D0469D36A673",
        "limit_ad_tracking": False,
        "ip": "18.144.35.70",
        "language": "EN",
        "geo_dma_code": 506,
        "geo_country_code": "US",
    },
    "last_attributed_touch_timestamp": 1532725477000,
    "last_attributed_touch_data": {
        "$3p": "a_taptica",
        "~advertising_partner_name": "Taptica",
        "~feature": "paid advertising",
        "~campaign": "taptica#1",
        "~channel": "taptica#1",
        "~click_id": "594174602",
        "+click_timestamp": 1530119099,
        "$idfa": "27AFDDCC-15DA-3A32-EF33-D0469D36A673",
        "+via_features": ["ADS", "MOBILE_DEEPVIEWS"],
    },
    "timestamp": 1530119165665,
}

# https://help.branch.io/using-branch/docs/webhooks "POST body with example data for an
# attributed open" (as mirrored at
# https://github.com/dweekly/docs/blob/master/pages/exports/ua-webhooks.md), trimmed.
ATTRIBUTED_OPEN = {
    "name": "open",
    "user_data": {
        "os": "IOS",
        "platform": "IOS_APP",
        "idfa": "F520B35A-4165-4426-98F6-64F12F47E9BZ",
        "idfv": "C6B869E7-7B0A-4A93-1C3D-960E8859DP5D",
        "ip": "50.200.105.218",
        "developer_identity": "DB8C86A6-8B7C-4192-BD29-8107A5B788A1",
        "country": "US",
    },
    "last_attributed_touch_data": {
        "~id": 467391383381228204,
        "~feature": "marketing",
        "~campaign": "december_test",
        "~channel": "Facebook Organic",
    },
    "custom_data": {"reinstall": "false", "ip": "50.200.105.218", "referred": "false"},
    "timestamp": 1512681005807,
}

# A webhook body recorded by an open-source receiver,
# https://github.com/bharath31/mixpanel-service/blob/master/README.md (booleans as strings,
# an event id, an IPv6 address and an AAID as Branch sent them), trimmed.
RECORDED_OPEN = (
    '{"origin": "BRANCH", "last_attributed_touch_type": "CLICK", "name": "OPEN",'
    ' "existing_user": "false", "deep_linked": "false", "user_data": {"ip":'
    ' "2405:204:93fb:954c:797c:ea7b", "limit_ad_tracking": "false", "environment": "FULL_APP",'
    ' "platform": "ANDROID_APP", "geo_country_code": "IN", "aaid": "99c5b45c-40ab-1e63c24a4853",'
    ' "os": "ANDROID"}, "attributed": "false", "last_attributed_touch_timestamp": 1552727001000,'
    ' "last_attributed_touch_data": {"~channel": "Facebook", "~campaign": "appinstall",'
    ' "~secondary_publisher": "facebook", "$3p": "a_facebook", "+click_timestamp": 1552727001},'
    ' "timestamp": 1552727083843, "id": "635390319521351354"}'
)


@pytest.fixture
def branch():
    return PostbackSourceFactory(kind="branch")


def test_the_documented_install_is_read_with_its_click_id_and_millisecond_time(client, branch):
    event = processed(post_json(client, branch, INSTALL))

    assert (event.kind, event.event_name, event.conversion_type) == (
        "install",
        "install",
        "install",
    )
    assert event.occurred_at == utc(2018, 6, 27, 17, 6, 5, 665000)
    assert event.click_id == "594174602"
    assert event.touch_time == utc(2018, 7, 27, 21, 4, 37)  # last_attributed_touch_timestamp, ms
    assert (event.idfa, event.platform, event.country, event.ip) == (
        "27AFDDCC-15DA-3A32-EF33-D0469D36A673",
        "ios",
        "US",
        "18.144.35.70",
    )
    # No event id: keyed by the device and the moment.
    assert Postback.objects.get().dedup_key == (
        "branch:idfa:27AFDDCC-15DA-3A32-EF33-D0469D36A673:install:2018-06-27T17:06:05.665Z"
    )


def test_the_documented_install_retried_is_a_duplicate(client, branch):
    first = post_json(client, branch, INSTALL)
    retry = post_json(client, branch, json.dumps(INSTALL, indent=2))  # same event, other bytes

    assert retry.json() == {"status": "duplicate", "id": first.json()["id"]}


def test_the_documented_attributed_open_keys_on_the_developer_identity(client, branch):
    event = processed(post_json(client, branch, ATTRIBUTED_OPEN))

    assert (event.kind, event.event_name) == ("event", "open")
    assert event.occurred_at == utc(2017, 12, 7, 21, 10, 5, 807000)
    assert event.mmp_device_id == "DB8C86A6-8B7C-4192-BD29-8107A5B788A1"
    # The documentation's example ids are not hexadecimal (…9BZ, …DP5D): not device ids.
    assert (event.idfa, event.idfv) == ("", "")
    assert (event.country, event.ip, event.platform) == ("US", "50.200.105.218", "ios")


def test_a_recorded_open_with_string_booleans_keys_on_its_id(client, branch):
    event = processed(post_json(client, branch, RECORDED_OPEN))

    assert (event.kind, event.event_name) == ("event", "open")
    assert event.occurred_at == utc(2019, 3, 16, 9, 4, 43, 843000)
    assert event.touch_type == "click"
    assert event.touch_time == utc(2019, 3, 16, 9, 3, 21)
    assert (event.platform, event.country) == ("android", "IN")
    # Branch's recorded AAID has four groups and the IPv6 address six: neither is valid.
    assert (event.gaid, event.ip) == ("", None)
    assert Postback.objects.get().dedup_key == "branch:635390319521351354"
