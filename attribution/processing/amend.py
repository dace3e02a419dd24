"""Every later change to a conversion: a status (a manager's review, an operator's report, a lost
claim) or a reattribution, with rollups, ledger, audit row and outbound postbacks following."""

import logging
from dataclasses import dataclass

from django.db import transaction

from affiliates.services import Actor, audit_record
from attribution.crediting import decide, fraud
from attribution.models import (
    Conversion,
    PostbackEvent,
    Reason,
)
from attribution.outbound import schedule
from attribution.rollups import keep
from payouts import fx, ledger

logger = logging.getLogger(__name__)


def ledger_follow(conversion: Conversion, *, actor: Actor = None) -> None:
    """Bring the commission ledger in line with the conversion, in this transaction.

    Without the FX rate it needs, the conversion stays marked unsynced and the ledger sweep
    retries once a manager has added the rate; attribution itself never waits for money.
    """
    Conversion.objects.filter(pk=conversion.pk).update(ledger_synced=False)
    try:
        with transaction.atomic():
            ledger.ledger_sync(conversion=conversion, actor=actor)
    except fx.FxRateMissing as exc:
        logger.warning("ledger waits for an FX rate conversion=%s: %s", conversion.pk, exc)


def conversion_set_status(
    *, conversion: Conversion, status: str, reason: str, actor: Actor = None, note: str = ""
) -> Conversion:
    """Change a conversion's status, keeping its rollups in step, with an audit row."""
    if conversion.status == status and conversion.reason == reason:
        return conversion
    old_status = conversion.status
    keep.conversion_apply(conversion, sign=-1)
    old = f"{conversion.status}/{conversion.reason}"
    conversion.status, conversion.reason = status, reason
    if note:
        conversion.detail = note[:500]
    conversion.save(update_fields=["status", "reason", "detail", "updated_at"])
    keep.conversion_apply(conversion, sign=1)
    audit_record(
        obj=conversion, field="status", old=old, new=f"{status}/{reason}", actor=actor, note=note
    )
    ledger_follow(conversion, actor=actor)
    schedule.outbound_decided(conversion=conversion, old_status=old_status)
    return conversion


# Channel, platform and country follow the credited origin (an adopted orphan takes its
# install's platform), so they move with a reattribution too.
REATTRIBUTED_FIELDS = (
    "affiliate",
    "campaign",
    "click",
    "method",
    "touch_type",
    "status",
    "reason",
    "channel",
    "platform",
    "country",
)


@dataclass
class Reattribution:
    conversion: Conversion
    old_affiliate_id: int | None
    old_status: str


def conversion_reattribute(*, conversion: Conversion, actor: Actor = None) -> Reattribution | None:
    """Re-run attribution for one conversion under today's configuration; None if unchanged.

    A conversion that lost its claim stays a duplicate; a manager's decision is kept. Money
    moves with it: rollups (and, through the status change, the ledger) follow.
    """
    if not conversion.is_winner or conversion.reason == Reason.MANAGER:
        return None
    event = PostbackEvent.objects.select_related("postback", "source", "app").get(
        pk=conversion.event_id
    )
    fresh = decide.build_conversion(event, pk=conversion.pk)
    if all(getattr(fresh, f) == getattr(conversion, f) for f in REATTRIBUTED_FIELDS):
        return None
    change = Reattribution(conversion, conversion.affiliate_id, conversion.status)
    keep.conversion_apply(conversion, sign=-1)
    # Its ledger entries' amounts move to its new dimensions before the ledger follows.
    keep.conversion_commission(conversion, sign=-1)
    old = f"{conversion.affiliate_id or 'organic'}/{conversion.status}/{conversion.reason}"
    for name in (*REATTRIBUTED_FIELDS, "detail", "ctit_seconds"):
        setattr(conversion, name, getattr(fresh, name))
    conversion.save()
    keep.conversion_apply(conversion, sign=1)
    keep.conversion_commission(conversion, sign=1)
    new = f"{conversion.affiliate_id or 'organic'}/{conversion.status}/{conversion.reason}"
    audit_record(
        obj=conversion, field="attribution", old=old, new=new, actor=actor, note="reattribute"
    )
    ledger_follow(conversion, actor=actor)
    schedule.outbound_decided(conversion=conversion, old_status=change.old_status)
    return change


def conversion_review(
    *, conversion: Conversion, approve: bool, actor: Actor, note: str = ""
) -> Conversion:
    """A manager's decision on a held (or any) conversion."""
    with transaction.atomic(), keep.deferred():
        locked = Conversion.objects.select_for_update().get(pk=conversion.pk)
        if approve:
            status, reason = Conversion.Status.APPROVED, Reason.MANAGER
        else:
            # A rejection keeps the rule's code when a rule held it: that is the why.
            status = Conversion.Status.REJECTED
            reason = locked.reason if locked.reason in fraud.RULE_REASONS else Reason.MANAGER
        return conversion_set_status(
            conversion=locked,
            status=status,
            reason=reason,
            actor=actor,
            note=note or ("approved by a manager" if approve else "rejected by a manager"),
        )
