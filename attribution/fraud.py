"""Fraud rules, configurable per campaign: each either holds a conversion for review or rejects
it, with its reason code. The first rule that rejects wins; otherwise the first that holds."""

from datetime import timedelta

from affiliates.models import Campaign

from .models import Click, Conversion, ConversionType, FraudPolicy, PostbackEvent, Reason

RULE_REASONS = {
    Reason.LOW_CTIT,
    Reason.OUTSIDE_LOOKBACK,
    Reason.BEFORE_CLICK,
    Reason.CLICK_FLOODING,
    Reason.MMP_BLOCKED,
    Reason.INVALID_SIGNATURE,
    Reason.IP_BURST,
    Reason.DEVICE_BURST,
}
DEFAULT_POLICY = FraudPolicy()


def policy_for(campaign: Campaign | None) -> FraudPolicy:
    if campaign is None:
        return DEFAULT_POLICY
    try:
        return campaign.fraud_policy
    except FraudPolicy.DoesNotExist:
        return DEFAULT_POLICY


def _flooding(conversion: Conversion, policy: FraudPolicy) -> str:
    """An affiliate's clicks per install on the campaign in the window above the threshold."""
    since = conversion.occurred_at - timedelta(hours=policy.flood_window_hours)
    installs = (
        Conversion.objects.filter(
            affiliate_id=conversion.affiliate_id,
            campaign_id=conversion.campaign_id,
            type=ConversionType.INSTALL,
            occurred_at__gte=since,
            occurred_at__lte=conversion.occurred_at,
            is_winner=True,
        )
        .exclude(pk=conversion.pk)
        .count()
    )
    limit = max(policy.flood_clicks_per_install * (installs + 1), policy.flood_min_clicks)
    # Count no further than the limit: a flooding affiliate has millions of clicks.
    clicks = Click.objects.filter(
        affiliate_id=conversion.affiliate_id,
        campaign_id=conversion.campaign_id,
        created_at__gte=since,
        created_at__lte=conversion.occurred_at,
    )[: limit + 1].count()
    if clicks > limit:
        return f"over {limit} clicks for {installs + 1} install(s) in {policy.flood_window_hours} h"
    return ""


def _burst(conversion: Conversion, policy: FraudPolicy) -> tuple[str, str]:
    since = conversion.occurred_at - timedelta(minutes=policy.burst_window_minutes)
    same_type = (
        Conversion.objects.filter(
            type=conversion.type, occurred_at__gte=since, occurred_at__lte=conversion.occurred_at
        )
        .exclude(reason__in=[Reason.DUPLICATE_CLAIM, Reason.DUPLICATE_FTD])
        .exclude(pk=conversion.pk)
    )
    if conversion.ip:
        from_ip = same_type.filter(ip=conversion.ip)[: policy.burst_max_per_ip + 1].count()
        if from_ip >= policy.burst_max_per_ip:
            return Reason.IP_BURST, f"{from_ip + 1} {conversion.type}s from {conversion.ip}"
    if conversion.player_key and conversion.type != ConversionType.INSTALL:
        from_device = same_type.filter(player_key=conversion.player_key)[
            : policy.burst_max_per_device + 1
        ].count()
        if from_device >= policy.burst_max_per_device:
            return Reason.DEVICE_BURST, f"{from_device + 1} {conversion.type}s from one device"
    return "", ""


def judge(*, conversion: Conversion, event: PostbackEvent, campaign: Campaign | None) -> None:
    """Apply the campaign's rules to an attributed conversion (sets its status and reason)."""
    policy = policy_for(campaign)
    findings: list[tuple[str, str, str]] = []  # (action, reason, detail)
    if conversion.reason == Reason.BEFORE_CLICK:
        findings.append((FraudPolicy.Action.REJECT, Reason.BEFORE_CLICK, conversion.detail))
    if conversion.reason == Reason.OUTSIDE_LOOKBACK:
        findings.append(
            (policy.outside_lookback_action, Reason.OUTSIDE_LOOKBACK, conversion.detail)
        )
    if event.blocked_reason or event.kind == PostbackEvent.Kind.REJECTED:
        findings.append(
            (policy.mmp_blocked_action, Reason.MMP_BLOCKED, event.blocked_reason or "rejected")
        )
    if conversion.ctit_seconds is not None and conversion.ctit_seconds < policy.min_ctit_seconds:
        findings.append(
            (
                policy.low_ctit_action,
                Reason.LOW_CTIT,
                f"installed {conversion.ctit_seconds} s after the click "
                f"(minimum {policy.min_ctit_seconds} s)",
            )
        )
    if conversion.type == ConversionType.INSTALL and policy.flood_action != FraudPolicy.Action.OFF:
        detail = _flooding(conversion, policy)
        if detail:
            findings.append((policy.flood_action, Reason.CLICK_FLOODING, detail))
    if policy.burst_action != FraudPolicy.Action.OFF:
        reason, detail = _burst(conversion, policy)
        if reason:
            findings.append((policy.burst_action, reason, detail))

    for wanted in (FraudPolicy.Action.REJECT, FraudPolicy.Action.HOLD):
        for action, reason, detail in findings:
            if action == wanted:
                conversion.status = (
                    Conversion.Status.REJECTED
                    if wanted == FraudPolicy.Action.REJECT
                    else Conversion.Status.PENDING
                )
                conversion.reason, conversion.detail = reason, detail[:500]
                return
    conversion.status, conversion.reason = Conversion.Status.APPROVED, Reason.OK
    conversion.detail = ""
