"""What the click redirect reads: the link behind ``/c/<code>`` and whether it may send traffic."""

from dataclasses import dataclass

from django.db import connection

from affiliates.models import Affiliate, Campaign, TrackingLink


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


def _link_sql() -> str:
    link, campaign, affiliate = (
        connection.ops.quote_name(m._meta.db_table) for m in (TrackingLink, Campaign, Affiliate)
    )
    # Written out rather than built by the ORM: this runs on every click, and compiling the
    # equivalent queryset costs more CPU than the database spends answering it.
    return (
        f"SELECT l.id, l.affiliate_id, l.campaign_id, c.name, c.web_url, c.ios_url, "  # noqa: S608
        f"c.android_url, c.click_lookback_days, l.deep_link, "
        f"l.sub1, l.sub2, l.sub3, l.sub4, l.sub5 "
        f"FROM {link} l JOIN {campaign} c ON c.id = l.campaign_id "
        f"JOIN {affiliate} a ON a.id = l.affiliate_id "
        f"WHERE l.code = %s AND l.is_active AND c.status = %s AND a.status = %s"
    )


def link_for_redirect(*, code: str) -> LinkTarget | None:
    """The link behind /c/<code> if it may send traffic now: link, campaign and affiliate active."""
    with connection.cursor() as cursor:
        cursor.execute(_link_sql(), [code, Campaign.Status.ACTIVE, Affiliate.Status.ACTIVE])
        row = cursor.fetchone()
    if row is None:
        return None
    return LinkTarget(*row[:9], subs=tuple(row[9:14]))
