"""Writes of the attribution domain. Clicks now; ingestion and attribution join later."""

import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from ulid import ULID

from affiliates.models import TrackingLink
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
    *, link: TrackingLink, params: Mapping[str, str], meta: Mapping[str, str]
) -> RecordedClick | None:
    """Record one click on ``link`` and work out where the visitor goes.

    ``params`` are the query parameters (sub1..sub5, gaid, idfa), ``meta`` the request's META.
    One INSERT and nothing else: this runs on every click. Returns None when the campaign has no
    destination for anyone.
    """
    campaign = link.campaign
    user_agent = clean_text(meta.get("HTTP_USER_AGENT", ""), USER_AGENT_MAX)
    platform = platform_from_user_agent(user_agent)
    template = {
        "ios": campaign.ios_url,
        "android": campaign.android_url,
    }.get(platform) or campaign.web_url
    if not template:
        template = campaign.ios_url or campaign.android_url
    if not template:
        return None

    subs = {}
    for i in range(1, 6):
        key = f"sub{i}"
        subs[key] = clean_text(params.get(key) or getattr(link, key), SUB_MAX)
    country = meta.get(settings.COUNTRY_HEADER, "")
    click = Click(
        click_id=str(ULID()),
        link_id=link.pk,
        affiliate_id=link.affiliate_id,
        campaign_id=campaign.pk,
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
    click.save(force_insert=True)
    ctx = ClickContext(
        click_id=click.click_id,
        affiliate_id=link.affiliate_id,
        campaign_id=campaign.pk,
        campaign_name=campaign.name,
        subs=subs,
        gaid=click.gaid,
        idfa=click.idfa,
        lookback_days=campaign.click_lookback_days,
        deep_link=link.deep_link,
    )
    return RecordedClick(
        click=click,
        destination=build_destination(template, ctx, appsflyer_pid=settings.APPSFLYER_PID),
    )


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
