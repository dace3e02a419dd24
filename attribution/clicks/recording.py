"""The click row: who clicked which link, from where, with which device ids; one INSERT a click."""

import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.db import connection
from django.utils import timezone
from ulid import ULID

from attribution.clicks.destination import ClickContext, build_destination, platform_from_user_agent
from attribution.clicks.targets import LinkTarget
from attribution.clicks.visitors import skip_reason, tally
from attribution.models import (
    REFERRER_MAX,
    SUB_MAX,
    USER_AGENT_MAX,
    Click,
)
from attribution.parsing.wire import clean_line

_COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")


_ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def device_id(value: str) -> str:
    """A canonical advertising id (lower-case UUID), or "" when absent, zeroed or malformed."""
    try:
        canonical = str(uuid.UUID(value.strip()))
    except (ValueError, AttributeError):
        return ""
    return "" if canonical == _ZERO_UUID else canonical


def client_ip(meta: Mapping[str, str]) -> str | None:
    candidates = [meta.get("REMOTE_ADDR", "")]
    hops = settings.TRUSTED_PROXY_COUNT
    if hops:
        forwarded = [p.strip() for p in meta.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        if len(forwarded) >= hops:
            candidates.insert(0, forwarded[-hops])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


@dataclass(frozen=True)
class RecordedClick:
    click: Click | None  # None: not a visitor (HEAD, a bot), redirected but not recorded
    destination: str


def click_record(
    *, link: LinkTarget, params: Mapping[str, str], meta: Mapping[str, str], method: str = "GET"
) -> RecordedClick | None:
    """Record one click on ``link`` and work out where the visitor goes.

    ``params`` are the query parameters (sub1..sub5, gaid, idfa), ``meta`` the request's META.
    One INSERT and nothing else: this runs on every click. A ``HEAD`` request or a bot's is
    redirected alike (with no click id: there is no click) and only counted (``visitors``).
    Returns None when the campaign has no destination for anyone.
    """
    user_agent = clean_line(meta.get("HTTP_USER_AGENT", ""), USER_AGENT_MAX)
    platform = platform_from_user_agent(user_agent)
    template = {"ios": link.ios_url, "android": link.android_url}.get(platform) or link.web_url
    if not template:
        template = link.ios_url or link.android_url
    if not template:
        return None

    subs = {
        f"sub{i}": clean_line(params.get(f"sub{i}") or link.subs[i - 1], SUB_MAX)
        for i in range(1, 6)
    }
    skipped = skip_reason(method=method, user_agent=user_agent)
    if skipped:
        tally.add(link_id=link.link_id, reason=skipped)
        ctx = ClickContext(
            click_id="",
            affiliate_id=link.affiliate_id,
            campaign_id=link.campaign_id,
            campaign_name=link.campaign_name,
            subs=subs,
            lookback_days=link.lookback_days,
            deep_link=link.deep_link,
        )
        return RecordedClick(
            click=None,
            destination=build_destination(template, ctx, appsflyer_pid=settings.APPSFLYER_PID),
        )
    country = meta.get(settings.COUNTRY_HEADER, "")
    click = Click(
        click_id=str(ULID()),
        link_id=link.link_id,
        affiliate_id=link.affiliate_id,
        campaign_id=link.campaign_id,
        created_at=timezone.now(),
        ip=client_ip(meta),
        user_agent=user_agent,
        platform=platform,
        country=country.upper() if _COUNTRY_RE.match(country) else "",
        referrer=clean_line(meta.get("HTTP_REFERER", ""), REFERRER_MAX),
        gaid=device_id(params.get("gaid", "")),
        idfa=device_id(params.get("idfa", "")).upper(),
        **subs,
    )
    _insert_click(click)
    ctx = ClickContext(
        click_id=click.click_id,
        affiliate_id=link.affiliate_id,
        campaign_id=link.campaign_id,
        campaign_name=link.campaign_name,
        subs=subs,
        gaid=click.gaid,
        idfa=click.idfa,
        lookback_days=link.lookback_days,
        deep_link=link.deep_link,
    )
    return RecordedClick(
        click=click,
        destination=build_destination(template, ctx, appsflyer_pid=settings.APPSFLYER_PID),
    )


_CLICK_COLUMNS = [f for f in Click._meta.concrete_fields if not f.primary_key]


def _insert_click(click: Click) -> None:
    """One INSERT, without the per-save machinery of Model.save (signals, field loops)."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in _CLICK_COLUMNS)
    sql = (
        f"INSERT INTO {quote(Click._meta.db_table)} ({columns}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(_CLICK_COLUMNS))})"
    )
    values = [f.get_db_prep_save(getattr(click, f.attname), connection) for f in _CLICK_COLUMNS]
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
