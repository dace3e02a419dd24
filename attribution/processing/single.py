"""One inbox row at a time: its event, its conversion (taking or losing the claim), the ids it is
remembered by, the organic events it adopts, and the operator's later reports of a transaction."""

import logging

from django.conf import settings
from django.db import (
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    transaction,
)
from django.utils import timezone

from affiliates.models import Campaign
from attribution.crediting import decide
from attribution.models import (
    Conversion,
    ConversionType,
    Identity,
    Method,
    Postback,
    PostbackEvent,
    Reason,
)
from attribution.outbound import schedule
from attribution.processing import amend, normalise, single, turns
from attribution.rollups import keep

logger = logging.getLogger(__name__)


CLAIM_RETRIES = 5

# Errors that say the database is busy or away, not that the row is bad: the task retries them.
TRANSIENT = (OperationalError, InterfaceError)


def _remember(conversion: Conversion, event: PostbackEvent) -> None:
    """Record the ids an install or registration is known by, against the claim's winner.

    A duplicate report of the same install (another MMP, its own device id) adds its ids to the
    winner, so that sender's later events chain to the right affiliate too.
    """
    if conversion.type not in (ConversionType.INSTALL, ConversionType.REGISTRATION):
        return
    owner = conversion if conversion.is_winner else conversion.duplicate_of
    if owner is None:
        return
    keys = decide.identity_keys(conversion, event)
    Identity.objects.bulk_create(
        [Identity(key=key[:200], conversion=owner, occurred_at=owner.occurred_at) for key in keys],
        ignore_conflicts=True,
    )
    if owner.affiliate_id is not None:
        _adopt_orphans(owner, keys)


def _adopt_orphans(origin: Conversion, keys: list[str]) -> None:
    """Events of this device or player that arrived before its install was known (a retried
    install postback, say) were left organic: credit them now."""
    orphans = decide.orphans_of(origin, keys)
    for orphan in orphans.select_for_update(of=("self",)).order_by("occurred_at", "pk"):
        amend.conversion_reattribute(conversion=orphan)


def _insert_claiming(conversion: Conversion, model: str) -> Conversion:
    """Insert ``conversion``, taking or losing its claim; safe with many workers at once."""
    for _ in range(CLAIM_RETRIES):
        try:
            with transaction.atomic():
                conversion.is_winner = True
                conversion.save(force_insert=True)
            return conversion
        except IntegrityError:
            conversion.pk = None
        held = (
            Conversion.objects.select_for_update(of=("self",))
            .select_related("click")
            .filter(claim_key=conversion.claim_key, is_winner=True)
            .first()
        )
        if held is None:
            continue  # the holder just gave way: try again
        if decide.beats(conversion, held, model):
            held.is_winner = False
            held.save(update_fields=["is_winner", "updated_at"])
            conversion.is_winner = True
            conversion.save(force_insert=True)
            held.duplicate_of = conversion
            held.save(update_fields=["duplicate_of", "updated_at"])
            # The ids the install was known by now lead to its new winner.
            Identity.objects.bulk_create(
                [
                    Identity(key=i.key, conversion=conversion, occurred_at=conversion.occurred_at)
                    for i in held.identities.all()
                ],
                ignore_conflicts=True,
            )
            amend.conversion_set_status(
                conversion=held,
                status=Conversion.Status.REJECTED,
                reason=Reason.DUPLICATE_CLAIM,
                note=f"claim taken by conversion #{conversion.pk}",
            )
            return conversion
        conversion.is_winner = False
        conversion.duplicate_of = held
        conversion.status = Conversion.Status.REJECTED
        conversion.reason = (
            Reason.DUPLICATE_FTD
            if conversion.type == ConversionType.FTD
            else Reason.DUPLICATE_CLAIM
        )
        conversion.detail = f"the claim is held by conversion #{held.pk}"
        conversion.save(force_insert=True)
        return conversion
    raise IntegrityError(f"could not settle claim {conversion.claim_key}")


def first_report(event: PostbackEvent) -> Conversion | None:
    """The conversion of the operator's first report of ``event``'s transaction, if another
    event of the same source and txid came before it; locked, as a manager's review locks it."""
    if not decide.is_later_report(event):
        return None
    return (
        Conversion.objects.select_for_update(of=("self",))
        .filter(event__source_id=event.source_id, event__txid=event.txid)
        .exclude(event=event)
        .order_by("event__postback_id")
        .first()
    )


REPORTED_STATUS = {
    "approved": Conversion.Status.APPROVED,
    "pending": Conversion.Status.PENDING,
    "declined": Conversion.Status.REJECTED,
}


# What an operator's report may change: its own statuses, not a rule's, a claim's or a manager's.
# A cap's verdict (held, or credited and not paid) stands too, unless the operator declines it.
REPORTABLE_REASONS = (Reason.OK, Reason.ORGANIC, Reason.DECLINED, Reason.OVER_CAP)


def conversion_reported(*, conversion: Conversion, event: PostbackEvent) -> Conversion:
    """Apply the operator's later report of a transaction to its conversion (``first_report``).

    Approved, pending or declined, also back to an earlier status: the deposit the operator
    confirms, holds or declines, with the ledger (a paid commission is reversed), rollups, an
    audit row and the affiliate's postbacks following. A report older (by its own time) than
    one already applied changes nothing, as does a report without a status, or one that would
    override a fraud rule, a lost claim or a manager's decision; the event is kept either way.
    """
    wanted = REPORTED_STATUS.get(event.status)
    if wanted is None or not conversion.is_winner or conversion.reason not in REPORTABLE_REASONS:
        return conversion
    if conversion.reason == Reason.OVER_CAP and wanted != Conversion.Status.REJECTED:
        return conversion
    if event.occurred_at is not None and (
        PostbackEvent.objects.filter(
            source_id=event.source_id, txid=event.txid, occurred_at__gt=event.occurred_at
        )
        .exclude(status="")
        .exclude(pk=event.pk)
        .exists()
    ):
        return conversion  # a report of a later time of its own came first: it stands
    if wanted == Conversion.Status.REJECTED:
        reason = Reason.DECLINED
    else:
        reason = Reason.OK if conversion.affiliate_id else Reason.ORGANIC
    return amend.conversion_set_status(
        conversion=conversion,
        status=wanted,
        reason=reason,
        note=f"the operator reported {event.status} (postback {event.postback_id})",
    )


def conversion_for_event(*, event: PostbackEvent) -> Conversion:
    """Attribute one normalised event and write its conversion (and rollups). Idempotent by event.

    Called inside the worker's transaction that created ``event``. The operator's later report
    of a transaction makes no conversion of its own: it is applied to the first report's.
    """
    existing = Conversion.objects.filter(event=event).first()
    if existing is not None:
        return existing
    if (first := first_report(event)) is not None:
        return conversion_reported(conversion=first, event=event)
    conversion = decide.build_conversion(event)
    campaign = conversion.campaign
    model = campaign.attribution_model if campaign else Campaign.AttributionModel.LAST_CLICK
    conversion = _insert_claiming(conversion, model)
    if conversion.method != Method.SKAN:
        _remember(conversion, event)
    keep.conversion_apply(conversion)
    amend.ledger_follow(conversion)
    schedule.outbound_decided(conversion=conversion, old_status=None)
    return conversion


def _process(postback_id: int) -> str:
    # Rollup rows are written last, just before the commit (see keep.deferred).
    with transaction.atomic(), keep.deferred():
        row = (
            Postback.objects.select_for_update(of=("self",))
            .select_related("source")
            .filter(pk=postback_id, status=Postback.Status.RECEIVED)
            .first()
        )
        if row is None:
            return "skipped"
        if row.attempts >= settings.POSTBACK_MAX_ATTEMPTS:
            normalise.row_failed(
                row, f"gave up after {row.attempts} attempts; {row.reason}", what="failed"
            )
            return row.status
        row.attempts += 1
        try:
            values = normalise.event_values(row)
        except normalise.UNREADABLE as exc:
            normalise.row_failed(row, exc)
            return row.status
        event = PostbackEvent(postback=row, source=row.source, **values)
        turns.devices_lock([event])
        event.save(force_insert=True)
        single.conversion_for_event(event=event)
        row.status = Postback.Status.PROCESSED
        row.processed_at = timezone.now()
        row.save(update_fields=["status", "attempts", "processed_at"])
    return row.status


def _attempt_counted(postback_id: int, exc: Exception) -> str | None:
    """Count a failed attempt on a row still waiting, in a transaction of its own; the row is
    failed once it has had POSTBACK_MAX_ATTEMPTS. Its status, or None when the database cannot
    take even that: it is away, and the task's retry waits for it."""
    error = f"{type(exc).__name__}: {exc}"
    try:
        with transaction.atomic():
            row = (
                Postback.objects.select_for_update(of=("self",))
                .filter(pk=postback_id, status=Postback.Status.RECEIVED)
                .first()
            )
            if row is None:
                return "skipped"
            row.attempts += 1
            if row.attempts >= settings.POSTBACK_MAX_ATTEMPTS:
                normalise.row_failed(
                    row, f"gave up after {row.attempts} attempts; the last: {error}", what="failed"
                )
            else:
                row.reason = f"attempt {row.attempts} failed: {error}"[:2000]
                row.save(update_fields=["attempts", "reason"])
            return row.status
    except DatabaseError:
        return None


def _quarantine(postback_id: int, exc: Exception) -> str:
    """A row the worker cannot process (a value its columns cannot hold, a bug a payload
    triggers) is marked failed with the error, in a transaction of its own, and the rows behind
    it go on; a manager re-runs it from ingestion health once the cause is fixed."""
    with transaction.atomic():
        row = (
            Postback.objects.select_for_update(of=("self",))
            .filter(pk=postback_id, status=Postback.Status.RECEIVED)
            .first()
        )
        if row is None:
            return "skipped"
        row.attempts += 1
        normalise.row_failed(row, f"{type(exc).__name__}: {exc}", what="could not be processed")
        return row.status


def _one(postback_id: int) -> tuple[str, Exception | None]:
    """The row's status, and the transient error its attempt met (counted on the row)."""
    try:
        return _process(postback_id), None
    except TRANSIENT as exc:
        status = _attempt_counted(postback_id, exc)
        if status is None:
            raise  # the database is away: the task's retry waits for it
        return (status, None) if status != Postback.Status.RECEIVED else ("retry", exc)
    except Exception as exc:
        logger.exception("postback could not be processed id=%s", postback_id)
        return _quarantine(postback_id, exc), None


def postback_process(*, postback_id: int) -> str:
    """Turn one received inbox row into its normalised event and conversion; returns its status.

    Idempotent: a row already handled (or gone) is left alone, the row lock lets one worker in at
    a time, and the event's one-to-one key makes a second event impossible. A worker killed
    mid-way rolls back and leaves the row ``received`` for a redelivery or the sweep.

    Never a stuck pipeline: a row that fails for a reason of its own is marked failed at once
    (``_quarantine``); one that meets a transient database error (``TRANSIENT``, raised again
    for the task's retry) has the attempt counted and is given up on after
    POSTBACK_MAX_ATTEMPTS.
    """
    status, transient = _one(postback_id)
    if transient is not None:
        raise transient
    return status


def postbacks_one_by_one(postback_ids: list[int]) -> dict[str, int]:
    """Each row in its own transaction. A row meeting a transient error does not hold up the
    rows after it: they are processed, and the error is raised at the end for the task's retry
    (after which the row is taken again, and given up on once it has had its attempts)."""
    counts: dict[str, int] = {}
    transient: Exception | None = None
    for postback_id in postback_ids:
        status, error = _one(postback_id)
        transient = error or transient
        counts[status] = counts.get(status, 0) + 1
    if transient is not None:
        raise transient
    return counts
