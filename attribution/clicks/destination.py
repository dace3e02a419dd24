"""Where a click goes: pick the destination for the visitor's platform and fill it in.

Framework-free so it can be tested on its own and kept off the database.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

MACRO_RE = re.compile(r"\{(click_id|affiliate_id|campaign_id|sub[1-5])\}")

# What a visitor's user agent says about the platform. Tablets and iPadOS in desktop mode that
# hide as Macs are counted as web: the store would not open for them anyway.
_IOS_RE = re.compile(r"iPhone|iPad|iPod|CPU (?:iPhone )?OS \d", re.IGNORECASE)
_ANDROID_RE = re.compile(r"Android", re.IGNORECASE)

ADJUST_CALLBACK_RE = re.compile(
    r"^(?:adj_)?(install_callback|reattribution_callback|conversion_callback|"
    r"rejected_install(?:_callback)?|rejected_reattribution(?:_callback)?|session_callback|"
    r"click_callback|impression_callback|ad_revenue_callback|event_callback_\w+)$"
)


def platform_from_user_agent(user_agent: str) -> str:
    if _IOS_RE.search(user_agent):
        return "ios"
    if _ANDROID_RE.search(user_agent):
        return "android"
    return "web"


@dataclass(frozen=True)
class ClickContext:
    click_id: str
    affiliate_id: int
    campaign_id: int
    campaign_name: str
    subs: Mapping[str, str]  # sub1..sub5, already cut to length
    gaid: str = ""
    idfa: str = ""
    lookback_days: int = 7
    deep_link: str = ""


def fill_macros(template: str, ctx: ClickContext) -> str:
    """Replace {click_id}, {affiliate_id}, {campaign_id}, {sub1}..{sub5} with URL-encoded values."""
    values = {
        "click_id": ctx.click_id,
        "affiliate_id": str(ctx.affiliate_id),
        "campaign_id": str(ctx.campaign_id),
        **{f"sub{i}": ctx.subs.get(f"sub{i}", "") for i in range(1, 6)},
    }
    return MACRO_RE.sub(lambda m: quote(values[m.group(1)], safe=""), template)


def is_appsflyer(host: str) -> bool:
    return host == "app.appsflyer.com" or host.endswith(".onelink.me")


def is_adjust(host: str) -> bool:
    return host in ("app.adjust.com", "app.adjust.net.in") or host.endswith(
        (".adj.st", ".go.link", ".adjust.com")
    )


def is_branch(host: str) -> bool:
    return host == "bnc.lt" or host.endswith((".app.link", ".test-app.link"))


def is_singular(host: str) -> bool:
    return host == "sng.link" or host.endswith(".sng.link")


def is_kochava(host: str) -> bool:
    return host == "control.kochava.com" or host.endswith(".smart.link")


def _with_query(url: str, add: Mapping[str, str], *, replace: bool = False) -> str:
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    present = {k for k, _ in query}
    if replace:
        query = [(k, v) for k, v in query if k not in add]
        present = set()
    query += [(k, v) for k, v in add.items() if k not in present and v != ""]
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def _appsflyer(url: str, ctx: ClickContext, pid: str) -> str:
    # AppsFlyer echoes only `clickid` (not af_sub1..5) on partner postbacks; af_siteid names the
    # affiliate in its reports. Parameters the template already sets are left as they are.
    add = {
        "pid": pid,
        "c": ctx.campaign_name,
        "clickid": ctx.click_id,
        "af_siteid": str(ctx.affiliate_id),
        "af_c_id": str(ctx.campaign_id),
        "af_click_lookback": f"{ctx.lookback_days}d",
        "advertising_id": ctx.gaid,
        "idfa": ctx.idfa,
        "af_dp": ctx.deep_link,
    }
    for i in range(1, 6):
        add[f"af_sub{i}"] = ctx.subs.get(f"sub{i}", "")
    return _with_query(url, add)


def _pairs(query: str) -> list[tuple[str, str]]:
    """A query's ``name=value`` pieces as written (not decoded), empty pieces dropped."""
    return [
        (name, value)
        for piece in query.split("&")
        if piece
        for name, _, value in [piece.partition("=")]
    ]


def _with_click_id(callback: str, click_id: str) -> str:
    """``callback`` (a URL as Adjust will call it) with our click id, everything else untouched.

    Adjust's ``{placeholders}`` and anything the template encoded stay byte for byte as written:
    re-encoding them would hide the placeholders from Adjust (``%7Badid%7D``).
    """
    rest, hash_, fragment = callback.partition("#")
    base, _, query = rest.partition("?")
    kept = [f"{n}={v}" for n, v in _pairs(query) if unquote(n) != "click_id"]
    kept.append(f"click_id={quote(click_id, safe='')}")
    return f"{base}?{'&'.join(kept)}{hash_}{fragment}"


def _adjust(url: str, ctx: ClickContext) -> str:
    """Adjust's "encoding callbacks" rules: the link and its campaign parameters stay as they
    are; each callback URL is encoded exactly once as a whole, so that Adjust, decoding the link
    once, finds our click id filled in and its own ``{placeholders}`` to fill.

    Adjust sends the partner's values as they were at click time, so the click id must be
    written into each callback URL on the link.
    """
    parts = urlsplit(url)
    pieces, names = [], set()
    for name, value in _pairs(parts.query):
        key = unquote(name)
        names.add(key)
        if ADJUST_CALLBACK_RE.match(key):
            callback = unquote(value)
            if callback.startswith(("http://", "https://")):
                value = quote(_with_click_id(callback, ctx.click_id), safe="")
        pieces.append(f"{name}={value}")
    for key, value in (("deep_link", ctx.deep_link), ("gps_adid", ctx.gaid), ("idfa", ctx.idfa)):
        if value and key not in names:
            pieces.append(f"{key}={quote(value, safe='')}")
    return urlunsplit(parts._replace(query="&".join(pieces)))


def _branch(url: str, ctx: ClickContext) -> str:
    # Branch ad-partner links: ~click_id comes back in last_attributed_touch_data on webhooks;
    # $idfa/$aaid let Branch match by device; ~secondary_publisher names the affiliate.
    return _with_query(
        url,
        {
            "~click_id": ctx.click_id,
            "~campaign": ctx.campaign_name,
            "~campaign_id": str(ctx.campaign_id),
            "~secondary_publisher": str(ctx.affiliate_id),
            "$idfa": ctx.idfa,
            "$aaid": ctx.gaid,
        },
    )


def _singular(url: str, ctx: ClickContext) -> str:
    # Singular returns `cl` on postbacks as {cl?Network}; psid names the publisher (affiliate).
    return _with_query(
        url,
        {
            "cl": ctx.click_id,
            "psid": str(ctx.affiliate_id),
            "pcid": str(ctx.campaign_id),
            "pcn": ctx.campaign_name,
            "idfa": ctx.idfa,
            "aifa": ctx.gaid,
        },
    )


def _kochava(url: str, ctx: ClickContext) -> str:
    # Kochava tracker clicks: click_id comes back on postbacks; site_id names the affiliate.
    return _with_query(
        url,
        {
            "click_id": ctx.click_id,
            "site_id": str(ctx.affiliate_id),
            "partner_campaign_id": str(ctx.campaign_id),
            "partner_campaign_name": ctx.campaign_name,
            "device_id": ctx.idfa or ctx.gaid,
        },
    )


def build_destination(template: str, ctx: ClickContext, *, appsflyer_pid: str) -> str:
    """The URL the visitor is sent to: macros filled, MMP partner parameters added."""
    url = fill_macros(template, ctx)
    host = (urlsplit(url).hostname or "").lower()
    if is_appsflyer(host):
        url = _appsflyer(url, ctx, appsflyer_pid)
    elif is_adjust(host):
        url = _adjust(url, ctx)
    elif is_branch(host):
        url = _branch(url, ctx)
    elif is_singular(host):
        url = _singular(url, ctx)
    elif is_kochava(host):
        url = _kochava(url, ctx)
    return url
