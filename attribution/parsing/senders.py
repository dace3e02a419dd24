"""What a manager pastes into each MMP's partner configuration: postback URL templates.

Framework-free. Each template uses the MMP's own macros (see ``docs/senders.md`` for where each
comes from) under the parameter names our adapters read first, so what the MMP sends is read
without guessing. Adjust is the odd one: its callbacks ride on the Adjust link, encoded once per
Adjust's "encoding callbacks" rules, and ``{click_id}`` in them is *our* macro, filled when the
visitor clicks (see ``attribution.clicks.destination``).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["Template", "adjust_link_suffix", "templates_for"]


@dataclass(frozen=True)
class Template:
    """One thing to paste: where it goes in the MMP's setup, and the text."""

    title: str
    text: str
    note: str = ""


def _query(pairs: list[tuple[str, str]]) -> str:
    return "&".join(f"{name}={macro}" for name, macro in pairs)


# AppsFlyer's base postback specification for ad networks: the macro after "=" is the AppsFlyer
# field, the name before it is ours.
_AF_COMMON = [
    ("clickid", "{clickid}"),
    ("af_siteid", "{af_siteid}"),
    ("appsflyer_id", "{appsflyer_id}"),
    ("idfa", "{idfa}"),
    ("idfv", "{idfv}"),
    ("advertising_id", "{advertising_id}"),
    ("app_id", "{app_id}"),
    ("platform", "{platform}"),
    ("country_code", "{country_code}"),
    ("install_unix_ts", "{install_unix_ts}"),
    ("attributed_touch_type", "{attributed_touch_type}"),
    ("attributed_touch_time", "{attributed_touch_time}"),
    ("is_retargeting", "{is_retargeting}"),
    ("blocked_reason", "{blocked_reason}"),
    ("blocked_reason_value", "{blocked_reason_value}"),
]
_AF_EVENT = [
    ("event_name", "{event_name}"),
    ("event_time", "{event_time}"),
    ("event_revenue", "{event_revenue}"),
    ("event_revenue_currency", "{event_revenue_currency}"),
    ("event_value", "{event_value}"),
]

# Adjust placeholders (help.adjust.com "Placeholders for partners").
_ADJUST_COMMON = [
    ("click_id", "{click_id}"),  # ours, filled at click time
    ("adid", "{adid}"),
    ("gps_adid", "{gps_adid}"),
    ("idfa", "{idfa}"),
    ("idfv", "{idfv}"),
    ("activity_kind", "{activity_kind}"),
    ("created_at", "{created_at}"),
    ("installed_at", "{installed_at}"),
    ("country", "{country}"),
    ("os_name", "{os_name}"),
    ("rejection_reason", "{rejection_reason}"),
]
_ADJUST_EVENT = [
    ("event", "{event}"),
    ("event_name", "{event_name}"),
    ("revenue_float", "{revenue_float}"),
    ("currency", "{currency}"),
]

# Branch webhooks: FreeMarker expressions over the webhook's event (help.branch.io webhooks).
_BRANCH_GET = [
    ("id", "${(id)!}"),
    ("name", "${(name)!}"),
    ("timestamp", "${(timestamp)!}"),
    ("click_id", "${(last_attributed_touch_data.~click_id)!}"),
    ("developer_identity", "${(user_data.developer_identity)!}"),
    ("idfa", "${(user_data.idfa)!}"),
    ("aaid", "${(user_data.aaid)!}"),
    ("os", "${(user_data.os)!}"),
    ("country", "${(user_data.geo_country_code)!}"),
    ("transaction_id", "${(event_data.transaction_id)!}"),
    ("revenue", "${(event_data.revenue)!}"),
    ("currency", "${(event_data.currency)!}"),
]

# Singular postback macros for ad networks; NETWORK is the network's name in Singular.
_SINGULAR_COMMON = [
    ("cl_id", "{cl?NETWORK}"),
    ("evtname", "{EVTNAME}"),
    ("utc", "{UTC}"),
    ("install_utc", "{INSTALL_UTC}"),
    ("idfa", "{IDFA}"),
    ("idfv", "{IDFV}"),
    ("aifa", "{AIFA}"),
    ("platform", "{PLATFORM}"),
    ("country", "{ATTRIBUTION_COUNTRY}"),
    ("longname", "{LONGNAME}"),
    ("is_re_eng", "{IS_RE_ENG}"),
    ("is_viewthrough", "{IS_VIEWTHROUGH}"),
]
_SINGULAR_EVENT = [("amount", "{AMOUNT}"), ("currency", "{CURRENCY}")]

# Kochava custom postback macros (the names the Kochava UI offers).
_KOCHAVA = [
    ("click_id", "{click_id}"),
    ("event_name", "{event_name}"),
    ("event_time", "{event_time}"),
    ("kochava_device_id", "{kochava_device_id}"),
    ("idfa", "{idfa}"),
    ("adid", "{adid}"),
    ("android_id", "{android_id}"),
    ("ip", "{ip_address}"),
    ("event_value", "{event_value}"),
    ("currency", "{currency}"),
    ("platform", "{platform}"),
    ("country", "{country}"),
]


def _adjust_callback(endpoint: str, event: bool) -> str:
    return f"{endpoint}?{_query(_ADJUST_COMMON + (_ADJUST_EVENT if event else []))}"


def _encode_callback(callback: str) -> str:
    # Encoded once as a whole; our own {click_id} macro stays readable, as in Adjust's example
    # ("do not encode dynamic partner macros"): the redirect fills it and encodes it anyway.
    return quote(callback, safe="").replace("%7Bclick_id%7D", "{click_id}")


def adjust_link_suffix(endpoint: str, event_tokens: list[str] | None = None) -> str:
    """What to append to an Adjust link: the install, rejected-install and event callbacks,
    each encoded once.

    Every event token shares one callback (``event_callback_<token1>_<token2>``, as Adjust's
    partner docs allow), which keeps the link inside a campaign URL's 2,000 characters.
    ``event_tokens`` default to a placeholder for the manager to replace.
    """
    install = _encode_callback(_adjust_callback(endpoint, event=False))
    event = _encode_callback(_adjust_callback(endpoint, event=True))
    tokens = "_".join(event_tokens or ["EVENTTOKEN"])
    return (
        f"&install_callback={install}&rejected_install_callback={install}"
        f"&event_callback_{tokens}={event}"
    )


def templates_for(kind: str, endpoint: str) -> list[Template]:
    """The postback URL templates to paste into ``kind``'s partner setup for ``endpoint``."""
    if kind == "appsflyer":
        return [
            Template("Install postback", f"{endpoint}?{_query(_AF_COMMON)}"),
            Template("In-app event postback", f"{endpoint}?{_query(_AF_COMMON + _AF_EVENT)}"),
        ]
    if kind == "adjust":
        return [
            Template(
                "Append to the Adjust link (campaign destination)",
                adjust_link_suffix(endpoint),
                "Replace EVENTTOKEN with the event tokens the app's owner gives you, joined by "
                "underscores (event_callback_abc123_def456). {click_id} is ours, filled on click.",
            ),
            Template("Install callback (unencoded, to read)", _adjust_callback(endpoint, False)),
            Template("Event callback (unencoded, to read)", _adjust_callback(endpoint, True)),
        ]
    if kind == "branch":
        return [
            Template(
                "Webhook, POST (Branch's default JSON body)",
                endpoint,
                "Events: install, reinstall, open and every event you pay for.",
            ),
            Template("Webhook, GET", f"{endpoint}?{_query(_BRANCH_GET)}"),
        ]
    if kind == "singular":
        return [
            Template(
                "Install postback",
                f"{endpoint}?{_query(_SINGULAR_COMMON)}",
                "Replace NETWORK with the name your network is integrated under in Singular.",
            ),
            Template(
                "In-app event postback",
                f"{endpoint}?{_query(_SINGULAR_COMMON + _SINGULAR_EVENT)}",
            ),
        ]
    if kind == "kochava":
        return [
            Template(
                "Custom postback (install and events)",
                f"{endpoint}?{_query(_KOCHAVA)}",
                "Installs arrive with event_name=_install. Set the revenue unit if the "
                "event value is in cents.",
            )
        ]
    if kind == "s2s":
        return [
            Template(
                "The operator's backend",
                f"{endpoint}?click_id=CLICK_ID&event=EVENT&txid=TXID&amount=AMOUNT"
                "&currency=CUR&player_id=PLAYER",
            )
        ]
    return []
