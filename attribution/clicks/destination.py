"""Where a click goes: pick the destination for the visitor's platform and fill it in.

Framework-free so it can be tested on its own and kept off the database.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

MACRO_RE = re.compile(r"\{(click_id|affiliate_id|campaign_id|sub[1-5])\}")

# What a visitor's user agent says about the platform. Tablets and iPadOS in desktop mode that
# hide as Macs are counted as web: the store would not open for them anyway.
_IOS_RE = re.compile(r"iPhone|iPad|iPod|CPU (?:iPhone )?OS \d", re.IGNORECASE)
_ANDROID_RE = re.compile(r"Android", re.IGNORECASE)

ADJUST_CALLBACK_RE = re.compile(
    r"^(?:adj_)?(install_callback|reattribution_callback|rejected_install|"
    r"rejected_reattribution|session_callback|event_callback_\w+)$"
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


def _adjust(url: str, ctx: ClickContext) -> str:
    # Adjust fills its own {placeholders} at callback time but sends the partner's values as they
    # were at click time: the click id must be written into each callback URL on the link.
    parts = urlsplit(url)
    query = []
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if ADJUST_CALLBACK_RE.match(key) and value.startswith(("http://", "https://")):
            value = _with_query(value, {"click_id": ctx.click_id}, replace=True)
        query.append((key, value))
    keys = {k for k, _ in query}
    if ctx.deep_link and "deep_link" not in keys:
        query.append(("deep_link", ctx.deep_link))
    if ctx.gaid and "gps_adid" not in keys:
        query.append(("gps_adid", ctx.gaid))
    if ctx.idfa and "idfa" not in keys:
        query.append(("idfa", ctx.idfa))
    return urlunsplit(parts._replace(query=urlencode(query, quote_via=quote)))


def build_destination(template: str, ctx: ClickContext, *, appsflyer_pid: str) -> str:
    """The URL the visitor is sent to: macros filled, MMP partner parameters added."""
    url = fill_macros(template, ctx)
    host = (urlsplit(url).hostname or "").lower()
    if is_appsflyer(host):
        url = _appsflyer(url, ctx, appsflyer_pid)
    elif is_adjust(host):
        url = _adjust(url, ctx)
    return url
