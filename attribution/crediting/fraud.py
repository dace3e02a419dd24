"""Fraud rules, configurable per campaign: each either holds a conversion for review or rejects
it, with its reason code. The first rule that rejects wins; otherwise the first that holds."""

from datetime import timedelta

from affiliates.models import Campaign
from attribution.crediting.lookups import DATABASE, Lookups
from attribution.models import (
    RULE_REASONS,
    Conversion,
    ConversionType,
    FraudPolicy,
    PostbackEvent,
    Reason,
)

__all__ = ["RULE_REASONS", "judge"]


def _flooding(conversion: Conversion, policy: FraudPolicy, lookups: Lookups) -> str:
    """An affiliate's clicks per install on the campaign in the window above the threshold."""
    since = conversion.occurred_at - timedelta(hours=policy.flood_window_hours)
    # The limit is never below flood_min_clicks: an affiliate with no more clicks than that in
    # the window cannot be flooding, and their installs need no counting.
    if lookups.clicks_in_window(conversion, since, policy.flood_min_clicks + 1) <= (
        policy.flood_min_clicks
    ):
        return ""
    installs = lookups.installs_in_window(conversion, since)
    limit = max(policy.flood_clicks_per_install * (installs + 1), policy.flood_min_clicks)
    # Count no further than the limit: a flooding affiliate has millions of clicks.
    clicks = lookups.clicks_in_window(conversion, since, limit + 1)
    if clicks > limit:
        return f"over {limit} clicks for {installs + 1} install(s) in {policy.flood_window_hours} h"
    return ""


def _burst(conversion: Conversion, policy: FraudPolicy, lookups: Lookups) -> tuple[str, str]:
    since = conversion.occurred_at - timedelta(minutes=policy.burst_window_minutes)
    if conversion.ip:
        from_ip = lookups.same_type_count(
            conversion, since, field="ip", value=conversion.ip, cap=policy.burst_max_per_ip + 1
        )
        if from_ip >= policy.burst_max_per_ip:
            return Reason.IP_BURST, f"{from_ip + 1} {conversion.type}s from {conversion.ip}"
    if conversion.player_key and conversion.type != ConversionType.INSTALL:
        from_device = lookups.same_type_count(
            conversion,
            since,
            field="player_key",
            value=conversion.player_key,
            cap=policy.burst_max_per_device + 1,
        )
        if from_device >= policy.burst_max_per_device:
            return Reason.DEVICE_BURST, f"{from_device + 1} {conversion.type}s from one device"
    return "", ""


def judge(
    *,
    conversion: Conversion,
    event: PostbackEvent,
    campaign: Campaign | None,
    lookups: Lookups = DATABASE,
) -> None:
    """Apply the campaign's rules to an attributed conversion (sets its status and reason)."""
    policy = lookups.policy(campaign)
    findings: list[tuple[str, str, str]] = []  # (action, reason, detail)
    if conversion.reason == Reason.BEFORE_CLICK:
        findings.append((FraudPolicy.Action.REJECT, Reason.BEFORE_CLICK, conversion.detail))
    if conversion.reason == Reason.OUTSIDE_GEO:
        # The campaign's geo rule, not a fraud threshold: always rejected, never paid.
        findings.append((FraudPolicy.Action.REJECT, Reason.OUTSIDE_GEO, conversion.detail))
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
        detail = _flooding(conversion, policy, lookups)
        if detail:
            findings.append((policy.flood_action, Reason.CLICK_FLOODING, detail))
    if policy.burst_action != FraudPolicy.Action.OFF:
        reason, detail = _burst(conversion, policy, lookups)
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
