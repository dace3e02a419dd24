"""Writes of the attribution domain. Clicks now; ingestion and attribution join later."""

import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone
from ulid import ULID

from affiliates.services import audit_record

from .models import (
    REFERRER_MAX,
    SUB_MAX,
    USER_AGENT_MAX,
    Click,
    PostbackSource,
    new_source_token,
)
from .redirect import ClickContext, build_destination, platform_from_user_agent
from .selectors import LinkTarget

# PostgreSQL text cannot hold NUL, and no control character is worth keeping in a sub id.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_COUNTRY_RE = re.compile(r"^[A-Za-z]{2}$")
_ZERO_UUID = "00000000-0000-0000-0000-000000000000"


def clean_text(value: str, limit: int) -> str:
    return _CONTROL_RE.sub("", value)[:limit]


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
    click: Click
    destination: str


def click_record(
    *, link: LinkTarget, params: Mapping[str, str], meta: Mapping[str, str]
) -> RecordedClick | None:
    """Record one click on ``link`` and work out where the visitor goes.

    ``params`` are the query parameters (sub1..sub5, gaid, idfa), ``meta`` the request's META.
    One INSERT and nothing else: this runs on every click. Returns None when the campaign has no
    destination for anyone.
    """
    user_agent = clean_text(meta.get("HTTP_USER_AGENT", ""), USER_AGENT_MAX)
    platform = platform_from_user_agent(user_agent)
    template = {"ios": link.ios_url, "android": link.android_url}.get(platform) or link.web_url
    if not template:
        template = link.ios_url or link.android_url
    if not template:
        return None

    subs = {
        f"sub{i}": clean_text(params.get(f"sub{i}") or link.subs[i - 1], SUB_MAX)
        for i in range(1, 6)
    }
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
        referrer=clean_text(meta.get("HTTP_REFERER", ""), REFERRER_MAX),
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


def source_rotate_token(
    *, source: PostbackSource, actor: object = None, grace: timedelta = timedelta(days=7)
) -> PostbackSource:
    """Give ``source`` a new token; the old one keeps working for ``grace``."""
    old = source.token
    source.previous_token = old
    source.previous_token_valid_until = timezone.now() + grace
    source.token = new_source_token()
    source.save(update_fields=["token", "previous_token", "previous_token_valid_until"])
    audit_record(
        obj=source, field="token", old=old[:6] + "...", new=source.token[:6] + "...", actor=actor
    )
    return source
