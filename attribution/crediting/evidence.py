"""What a manager needs to decide on a held conversion, read in a few bounded queries: the click,
the click-to-install time, the device's and the IP's history, the rule that held it with its
threshold, and any competing claim on the same install or deposit. Reads only."""

from dataclasses import dataclass, field
from datetime import timedelta

from attribution.crediting.lookups import DATABASE
from attribution.models import Click, Conversion, FraudPolicy, PostbackEvent, Reason

HISTORY = 10  # rows of device and IP history shown; enough to see a pattern, cheap to read
IP_CLICK_WINDOW = timedelta(hours=24)


@dataclass
class Evidence:
    conversion: Conversion
    click: Click | None
    event: PostbackEvent | None
    rule: str  # the rule's name in words
    threshold: str  # the rule's setting that was crossed, in words
    finding: str  # what the rule saw (the conversion's detail)
    ctit_seconds: int | None
    device_history: list[Conversion] = field(default_factory=list)
    ip_history: list[Conversion] = field(default_factory=list)
    ip_clicks_day: int = 0
    competing: list[Conversion] = field(default_factory=list)


def _threshold(conversion: Conversion, policy: FraudPolicy) -> str:
    reason = conversion.reason
    if reason == Reason.LOW_CTIT:
        return (
            f"minimum click-to-install time {policy.min_ctit_seconds} s "
            f"(action: {policy.get_low_ctit_action_display()})"
        )
    if reason == Reason.OUTSIDE_LOOKBACK:
        days = conversion.campaign.click_lookback_days if conversion.campaign else "?"
        return (
            f"click lookback {days} day(s) (action: {policy.get_outside_lookback_action_display()})"
        )
    if reason == Reason.CLICK_FLOODING:
        return (
            f"over {policy.flood_clicks_per_install} clicks per install in "
            f"{policy.flood_window_hours} h, judged from {policy.flood_min_clicks} clicks "
            f"(action: {policy.get_flood_action_display()})"
        )
    if reason == Reason.IP_BURST:
        return (
            f"more than {policy.burst_max_per_ip} {conversion.type}s from one IP in "
            f"{policy.burst_window_minutes} min (action: {policy.get_burst_action_display()})"
        )
    if reason == Reason.DEVICE_BURST:
        return (
            f"more than {policy.burst_max_per_device} {conversion.type}s from one device in "
            f"{policy.burst_window_minutes} min (action: {policy.get_burst_action_display()})"
        )
    if reason == Reason.MMP_BLOCKED:
        return f"the MMP's fraud verdict (action: {policy.get_mmp_blocked_action_display()})"
    if reason == Reason.BEFORE_CLICK:
        return "an install cannot come before its click (always rejected)"
    return ""


def conversion_evidence(conversion: Conversion) -> Evidence:
    """The evidence for a decision on ``conversion`` (any status; built for the review queue)."""
    click = Click.objects.filter(pk=conversion.click_id).first() if conversion.click_id else None
    event = PostbackEvent.objects.select_related("source").filter(pk=conversion.event_id).first()
    policy = DATABASE.policy(conversion.campaign)
    evidence = Evidence(
        conversion=conversion,
        click=click,
        event=event,
        rule=conversion.get_reason_display(),
        threshold=_threshold(conversion, policy),
        finding=conversion.detail,
        ctit_seconds=conversion.ctit_seconds,
    )
    others = Conversion.objects.exclude(pk=conversion.pk).select_related("affiliate", "campaign")
    if conversion.player_key:
        evidence.device_history = list(
            others.filter(player_key=conversion.player_key).order_by("-occurred_at")[:HISTORY]
        )
    if conversion.ip:
        evidence.ip_history = list(
            others.filter(ip=conversion.ip).order_by("-occurred_at")[:HISTORY]
        )
    if click is not None and click.ip:
        # Bounded by the click_affiliate_time index: this affiliate's clicks of the last day.
        evidence.ip_clicks_day = Click.objects.filter(
            affiliate_id=click.affiliate_id,
            created_at__gte=click.created_at - IP_CLICK_WINDOW,
            created_at__lte=click.created_at,
            ip=click.ip,
        ).count()
    evidence.competing = list(
        others.filter(claim_key=conversion.claim_key).order_by("occurred_at")[:HISTORY]
    )
    return evidence
