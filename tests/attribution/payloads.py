"""Realistic postbacks, as each sender sends them (see shared/reference/postbacks.md)."""

import json

CLICK_ID = "01JD3K9Q8X4M2N7P5R6S8T0V1W"

APPSFLYER_INSTALL = (
    f"clickid={CLICK_ID}&af_siteid=42&idfa=8C6CBC0D-5F43-4765-A6E6-84DFF3D24707"
    "&appsflyer_id=1698811503838-6471005703857226630&app_id=id1234567890&platform=ios"
    "&country_code=DE&install_unix_ts=1698811507&attributed_touch_type=click"
    "&attributed_touch_time=2023-11-01%2003%3A48%3A33.000&is_retargeting=false"
)
APPSFLYER_EVENT = (
    f"clickid={CLICK_ID}&appsflyer_id=1698811503838-6471005703857226630&app_id=id1234567890"
    "&platform=ios&event_name=af_purchase&event_revenue=4.99&event_revenue_currency=EUR"
    "&event_time=2023-11-03%2000%3A49%3A04.897&install_unix_ts=1698811507"
)
APPSFLYER_PUSH_API = json.dumps(
    {
        "api_version": "2.0",
        "appsflyer_id": "1698811503838-6471005703857226630",
        "app_id": "id1234567890",
        "platform": "ios",
        "event_name": "af_first_deposit",
        "event_time": "2023-11-04 10:00:00.000",
        "event_revenue": "50",
        "event_revenue_currency": "EUR",
        "media_source": "affportal_int",
        "clickid": CLICK_ID,
        "is_retargeting": False,
        "customer_user_id": "player-77",
    }
)
ADJUST_EVENT = (
    f"click_id={CLICK_ID}&gps_adid=38400000-8cf0-11bd-b23e-10b96e40000d"
    "&adid=18546f6171f67e29d1cb983322ad1329&tracker=abc123&activity_kind=event"
    "&created_at=1404214665&installed_at=1404214634&event=bkrfgq&event_name=ftd"
    "&revenue_float=50.00&currency=EUR"
)
ADJUST_INSTALL = (
    f"click_id={CLICK_ID}&gps_adid=38400000-8cf0-11bd-b23e-10b96e40000d"
    "&adid=18546f6171f67e29d1cb983322ad1329&activity_kind=install&created_at=1404214634"
    "&installed_at=1404214634&country=de&os_name=android&idfa={idfa}"
)
BRANCH_PURCHASE = json.dumps(
    {
        "name": "PURCHASE",
        "id": "1234567890123456789",
        "timestamp": 1698811507000,
        "attributed": True,
        "last_attributed_touch_type": "CLICK",
        "last_attributed_touch_timestamp": 1698811400000,
        "user_data": {
            "os": "IOS",
            "platform": "IOS_APP",
            "idfa": "8C6CBC0D-5F43-4765-A6E6-84DFF3D24707",
            "developer_identity": "player-9",
            "geo_country_code": "GB",
        },
        "last_attributed_touch_data": {
            "~campaign": "spring",
            "+click_timestamp": 1698811400,
            "click_id": CLICK_ID,
        },
        "event_data": {"transaction_id": "tx-1", "revenue": 19.99, "currency": "GBP"},
    }
)
SINGULAR_INSTALL = (
    f"cl={CLICK_ID}&idfa=8C6CBC0D-5F43-4765-A6E6-84DFF3D24707&platform=iOS"
    "&country=DE&install_utc=1698811507&evtname=__INSTALL__&public_id=1234567890"
    "&device_id=sng-device-1&amount={AMOUNT}"
)
KOCHAVA_INSTALL = (
    f"click_id={CLICK_ID}&event_name=_install&kochava_device_id=KD123&adid="
    "38400000-8cf0-11bd-b23e-10b96e40000d&event_time=1698811507&ip=203.0.113.9"
)
S2S_FTD = f"click_id={CLICK_ID}&event=ftd&amount=100.50&currency=EUR&txid=dep-1001&player_id=p-1"
S2S_FTD_JSON = json.dumps(
    {"clickid": CLICK_ID, "goal": "ftd", "sum": "100.50", "currency": "EUR", "order_id": "dep-2002"}
)
