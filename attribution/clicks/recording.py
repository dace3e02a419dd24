"""The click row: who clicked which link, from where, with which device ids; one row a click."""

import ipaddress
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from django.conf import settings
from django.utils import timezone
from ulid import ULID

from attribution.clicks import writing
from attribution.clicks.destination import ClickContext, build_destination, platform_from_user_agent
from attribution.clicks.targets import LinkTarget
from attribution.clicks.visitors import skip_reason, tally
from attribution.models import REFERRER_MAX, SUB_MAX, USER_AGENT_MAX, SkippedClicks
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
    click_id: str  # "": not a visitor (HEAD, a bot), redirected but not recorded
    destination: str


def click_record(
    *, link: LinkTarget, params: Mapping[str, str], meta: Mapping[str, str], method: str = "GET"
) -> RecordedClick | None:
    """Record one click on ``link`` and work out where the visitor goes.

    ``params`` are the query parameters (sub1..sub5, gaid, idfa), ``meta`` the request's META.
    One row written and nothing else (``writing``: on PostgreSQL with the clicks under way in
    this process): this runs on every click. A ``HEAD`` request or a bot's is redirected alike
    (with no click id: there is no click) and only counted (``visitors``). Returns None when the
    campaign has no destination for anyone. Raises DatabaseError when the click is not stored.
    """
    with writing.coming():
        return _record(link, params, meta, method)


def _record(
    link: LinkTarget, params: Mapping[str, str], meta: Mapping[str, str], method: str
) -> RecordedClick | None:
    user_agent = clean_line(meta.get("HTTP_USER_AGENT", ""), USER_AGENT_MAX)
    platform = platform_from_user_agent(user_agent)
    country = meta.get(settings.COUNTRY_HEADER, "")
    country = country.upper() if _COUNTRY_RE.match(country) else ""
    template = {"ios": link.ios_url, "android": link.android_url}.get(platform) or link.web_url
    if not template:
        template = link.ios_url or link.android_url
    if country and link.countries and country not in link.countries and link.fallback_url:
        # A country the campaign does not take: recorded with its country (never paid, see
        # crediting), and sent where the operator wants such visitors.
        template = link.fallback_url
    capped = link.capped and bool(link.fallback_url)
    if capped:
        # A cap is reached for the period (payouts.caps): the visitor goes to the fallback and
        # is counted as such, with no click a conversion could be credited to.
        template = link.fallback_url
    if not template:
        return None

    defaults = link.subs
    subs = [clean_line(params.get(f"sub{i}") or defaults[i - 1], SUB_MAX) for i in range(1, 6)]
    skipped = (
        SkippedClicks.Reason.CAPPED if capped else skip_reason(method=method, user_agent=user_agent)
    )
    if skipped:
        tally.add(link_id=link.link_id, reason=skipped)
        click_id = gaid = idfa = ""
    else:
        # Values as plain Python, in writing.COLUMNS order: no model instance, no per-field
        # preparation (a tenth of the click's own CPU went there).
        click_id = str(ULID())
        gaid = device_id(params["gaid"]) if "gaid" in params else ""
        idfa = device_id(params["idfa"]).upper() if "idfa" in params else ""
        row = (
            click_id,
            link.link_id,
            link.affiliate_id,
            link.campaign_id,
            timezone.now(),
            client_ip(meta),
            user_agent,
            platform,
            country,
            *subs,
            clean_line(meta.get("HTTP_REFERER", ""), REFERRER_MAX),
            gaid,
            idfa,
        )
        writing.click_store(row)
    ctx = ClickContext(
        click_id=click_id,
        affiliate_id=link.affiliate_id,
        campaign_id=link.campaign_id,
        campaign_name=link.campaign_name,
        subs={f"sub{i}": sub for i, sub in enumerate(subs, 1)},
        gaid=gaid,
        idfa=idfa,
        lookback_days=link.lookback_days,
        deep_link=link.deep_link,
    )
    return RecordedClick(
        click_id=click_id,
        destination=build_destination(template, ctx, appsflyer_pid=settings.APPSFLYER_PID),
    )
