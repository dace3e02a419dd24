"""What the click redirect reads: the link behind ``/c/<code>`` and whether it may send traffic.

Each web process keeps what it found for ``CLICK_LINK_CACHE_SECONDS`` (5): a link is clicked over
and over, and its lookup was a third of a click's database time. A change to a link, campaign or
affiliate saved in a process clears that process's copy at once; the other processes see it
within those seconds (a paused campaign stops sending traffic everywhere within them).
"""

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from affiliates.models import Affiliate, Campaign, CampaignAccess, TrackingLink, country_set
from payouts.models import Cap, CapUsage


@dataclass(frozen=True)
class LinkTarget:
    """What the click redirect needs to know of a link, its campaign and its affiliate."""

    link_id: int
    affiliate_id: int
    campaign_id: int
    campaign_name: str
    web_url: str
    ios_url: str
    android_url: str
    lookback_days: int
    deep_link: str
    subs: tuple[str, str, str, str, str]
    # False: the campaign needs access the affiliate no longer has (revoked, refused): the
    # visitor goes to ``fallback_url`` and no click is recorded.
    allowed: bool = True
    fallback_url: str = ""
    # The countries the campaign accepts (empty: all); others go to ``fallback_url``.
    countries: frozenset[str] = frozenset()
    # True: a cap of the campaign (or of this affiliate on it) whose action is "fallback" was
    # reached in its current period: visitors go to ``fallback_url``, counted, not recorded.
    capped: bool = False


def _link_sql() -> str:
    link, campaign, affiliate, access, cap, usage = (
        connection.ops.quote_name(m._meta.db_table)
        for m in (TrackingLink, Campaign, Affiliate, CampaignAccess, Cap, CapUsage)
    )
    # Written out rather than built by the ORM: this runs on every click, and compiling the
    # equivalent queryset costs more CPU than the database spends answering it.
    return (
        f"SELECT l.id, l.affiliate_id, l.campaign_id, c.name, c.web_url, c.ios_url, "  # noqa: S608
        f"c.android_url, c.click_lookback_days, l.deep_link, "
        f"l.sub1, l.sub2, l.sub3, l.sub4, l.sub5, "
        f"(c.visibility = %s OR EXISTS (SELECT 1 FROM {access} x WHERE x.affiliate_id = "
        f"l.affiliate_id AND x.campaign_id = l.campaign_id AND x.status = %s)), c.fallback_url, "
        f"c.countries, EXISTS (SELECT 1 FROM {cap} p JOIN {usage} u ON u.cap_id = p.id "
        f"WHERE p.campaign_id = l.campaign_id AND p.is_active AND p.action = %s "
        f"AND (p.affiliate_id IS NULL OR p.affiliate_id = l.affiliate_id) "
        f"AND u.reached_at IS NOT NULL AND u.ends_at > %s) "
        f"FROM {link} l JOIN {campaign} c ON c.id = l.campaign_id "
        f"JOIN {affiliate} a ON a.id = l.affiliate_id "
        f"WHERE l.code = %s AND l.is_active AND c.status = %s AND a.status = %s"
    )


# code -> (kept until, on time.monotonic(); the link or None). Unknown and inactive codes are
# kept too (scanners try many), so the size is capped: past it the cache starts afresh.
_links: dict[str, tuple[float, LinkTarget | None]] = {}
_MAX_KEPT = 50_000
_generation = 0  # bumped by every clear: a lookup that raced a change is not kept
_lock = threading.Lock()


def link_for_redirect(*, code: str) -> LinkTarget | None:
    """The link behind /c/<code> if link, campaign and affiliate are active; ``allowed`` says
    whether it may send traffic there (access to a non-public campaign)."""
    kept = _links.get(code)
    if kept is not None and kept[0] > time.monotonic():
        return kept[1]
    generation = _generation
    link = _lookup(code)
    seconds = settings.CLICK_LINK_CACHE_SECONDS
    if seconds > 0:
        with _lock:
            if generation == _generation:
                if len(_links) >= _MAX_KEPT:
                    _links.clear()
                _links[code] = (time.monotonic() + seconds, link)
    return link


@receiver(post_save, sender=TrackingLink)
@receiver(post_delete, sender=TrackingLink)
@receiver(post_save, sender=Campaign)
@receiver(post_delete, sender=Campaign)
@receiver(post_save, sender=Affiliate)
@receiver(post_delete, sender=Affiliate)
@receiver(post_save, sender=CampaignAccess)
@receiver(post_delete, sender=CampaignAccess)
@receiver(post_save, sender=Cap)
@receiver(post_delete, sender=Cap)
def links_forget(**kwargs: Any) -> None:
    """Drop this process's kept links: a status, destination or default sub id may have changed."""
    global _generation
    with _lock:
        _generation += 1
        _links.clear()


def _lookup(code: str) -> LinkTarget | None:
    with connection.cursor() as cursor:
        cursor.execute(
            _link_sql(),
            [
                Campaign.Visibility.PUBLIC,
                CampaignAccess.Status.APPROVED,
                Cap.Action.FALLBACK,
                timezone.now(),
                code,
                Campaign.Status.ACTIVE,
                Affiliate.Status.ACTIVE,
            ],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return LinkTarget(
        *row[:9],
        subs=tuple(row[9:14]),
        allowed=bool(row[14]),
        fallback_url=row[15],
        countries=country_set(row[16]),
        capped=bool(row[17]),
    )
