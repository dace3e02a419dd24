"""Payout runs: approved entries past their hold, netted per affiliate, each paid at most once."""

import zoneinfo
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.urls import reverse
from django.utils import timezone

from affiliates import notify, profile
from affiliates.models import Affiliate, AuditEvent, NoticeKind
from affiliates.services import Actor, audit_record
from attribution.models import Conversion

from . import invoices
from .ledger import REVENUE_TYPES, month_bounds
from .models import LedgerEntry, Payout, PayoutRun, PlanVersion, RevShareStatement

BATCH = 500
Status = LedgerEntry.Status


class PayoutError(ValueError):
    """A run or payout cannot take this step (wrong status, overlapping period)."""


def period_cutoff(period_end: date, time_zone: str) -> datetime:
    """The first instant after the period's last day, in the affiliate's time zone."""
    zone = zoneinfo.ZoneInfo(time_zone)
    return datetime.combine(period_end + timedelta(days=1), datetime.min.time(), zone)


class MonthsOpen(PayoutError):
    """The run covers months whose RevShare is not closed; creating it needs a confirmation."""

    def __init__(self, months: list[date]) -> None:
        self.months = months
        names = ", ".join(f"{m:%Y-%m}" for m in months)
        super().__init__(
            f"RevShare is not closed for {names}: the run would leave that RevShare for a later "
            "run (close the month first: python manage.py close_month YYYY-MM), or confirm"
        )


# Periods a run may cover: the calendar arithmetic (cutoffs, month bounds) stays well inside
# what datetime can hold, and a run longer than a year is a typing mistake.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)
LONGEST = timedelta(days=366)


@dataclass
class RunCheck:
    """What a manager must fix (errors) or confirm (open months) before a run is created."""

    errors: list[str] = field(default_factory=list)
    open_months: list[date] = field(default_factory=list)


def months_in(period_start: date, period_end: date) -> list[date]:
    """The first days of the calendar months the period touches."""
    months, month = [], period_start.replace(day=1)
    while month <= period_end:
        months.append(month)
        month = (month + timedelta(days=32)).replace(day=1)
    return months


def revshare_open_months(period_start: date, period_end: date) -> list[date]:
    """Months of the period with money to share under a RevShare plan and no statement yet.

    A month counts as closed once ``close_month`` wrote a statement for it; a month with no
    deposits, or a program without RevShare, has nothing to close.
    """
    if not PlanVersion.objects.filter(revshare_percent__gt=0).exists():
        return []
    closed = set(
        RevShareStatement.objects.filter(
            period__gte=period_start.replace(day=1), period__lte=period_end
        )
        .values_list("period", flat=True)
        .distinct()
    )
    open_months = []
    for month in months_in(period_start, period_end):
        if month in closed:
            continue
        start, end = month_bounds(month, "UTC")
        if Conversion.objects.filter(
            occurred_at__gte=start,
            occurred_at__lt=end,
            type__in=list(REVENUE_TYPES),
            status=Conversion.Status.APPROVED,
            affiliate__isnull=False,
        ).exists():
            open_months.append(month)
    return open_months


def payout_run_check(*, period_start: date, period_end: date) -> RunCheck:
    """Every reason a run for this period cannot be made, and the months to confirm."""
    check = RunCheck()
    if not (FIRST_DAY <= period_start <= LAST_DAY and FIRST_DAY <= period_end <= LAST_DAY):
        check.errors.append(f"a run's days are between {FIRST_DAY} and {LAST_DAY}")
        return check
    if period_end < period_start:
        check.errors.append(f"the period ends ({period_end}) before it starts ({period_start})")
        return check
    if period_end - period_start >= LONGEST:
        check.errors.append("a run covers at most a year")
        return check
    live = PayoutRun.objects.exclude(status=PayoutRun.Status.CANCELLED)
    same = live.filter(period_start=period_start, period_end=period_end).first()
    if same is not None:
        check.errors.append(f"a run for {period_start} .. {period_end} exists already")
        return check
    overlapping = (
        live.filter(Q(period_start__lte=period_end) & Q(period_end__gte=period_start))
        .order_by("period_start")
        .first()
    )
    if overlapping is not None:
        check.errors.append(
            f"the period overlaps run {overlapping.pk} ({overlapping.period_start} .. "
            f"{overlapping.period_end}); cancel that run or pick days after it"
        )
        return check
    check.open_months = revshare_open_months(period_start, period_end)
    return check


def payout_run_create(
    *,
    period_start: date,
    period_end: date,
    actor: Actor = None,
    open_months_confirmed: bool = False,
) -> PayoutRun:
    """A new run (to be worked out by ``payout_run_execute``). Refuses a reversed, overlapping
    or repeated period; months with RevShare not yet closed need ``open_months_confirmed``."""
    check = payout_run_check(period_start=period_start, period_end=period_end)
    if check.errors:
        raise PayoutError(check.errors[0])
    if check.open_months and not open_months_confirmed:
        raise MonthsOpen(check.open_months)
    try:
        with transaction.atomic():
            run = PayoutRun.objects.create(
                period_start=period_start,
                period_end=period_end,
                created_by=actor if actor is not None and actor.is_authenticated else None,
            )
    except IntegrityError:
        # Another manager created the same run between the check and the insert.
        raise PayoutError(f"a run for {period_start} .. {period_end} exists already") from None
    if check.open_months:
        names = ", ".join(f"{m:%Y-%m}" for m in check.open_months)
        audit_record(
            obj=run,
            field="created",
            old="",
            new="draft",
            actor=actor,
            note=f"created with RevShare not closed for {names}",
        )
    return run


def latest_cutoff(period_end: date) -> datetime:
    """The period's end in the westernmost time zone (UTC-12): the latest of all cutoffs."""
    return period_cutoff(period_end, "Etc/GMT+12")


def _candidates(run: PayoutRun) -> list[int]:
    # Wide enough for any time zone; each affiliate's own cutoff is applied per batch.
    latest = latest_cutoff(run.period_end)
    return list(
        LedgerEntry.objects.filter(
            status=Status.APPROVED, payout__isnull=True, available_at__lt=latest
        )
        .exclude(beneficiary__payouts__run=run)
        # New payment details not yet checked by a manager: the balance waits (profile).
        .exclude(beneficiary_id__in=profile.held_affiliates())
        .order_by("beneficiary_id")
        .values_list("beneficiary_id", flat=True)
        .distinct()
    )


def _pay_batch(run: PayoutRun, affiliate_ids: list[int]) -> int:
    """Net one batch of affiliates; returns how many payouts it made. One transaction."""
    made = 0
    with transaction.atomic():
        affiliates = {
            a.pk: a
            for a in Affiliate.objects.filter(pk__in=affiliate_ids).only(
                "id", "time_zone", "currency", "minimum_payout"
            )
        }
        done = set(
            Payout.objects.filter(run=run, affiliate_id__in=affiliate_ids).values_list(
                "affiliate_id", flat=True
            )
        )
        latest = latest_cutoff(run.period_end)
        rows = (
            LedgerEntry.objects.select_for_update()
            .filter(
                beneficiary_id__in=[a for a in affiliate_ids if a not in done],
                status=Status.APPROVED,
                payout__isnull=True,
                available_at__lt=latest,
            )
            .order_by("pk")
            .values_list("pk", "beneficiary_id", "amount", "currency", "available_at")
        )
        owed: dict[tuple[int, str], list] = defaultdict(lambda: [Decimal(0), []])
        for pk, beneficiary_id, amount, currency, available_at in rows:
            affiliate = affiliates[beneficiary_id]
            if available_at >= period_cutoff(run.period_end, affiliate.time_zone):
                continue
            entry = owed[(beneficiary_id, currency)]
            entry[0] += amount
            entry[1].append(pk)
        payouts = []
        for (beneficiary_id, currency), (total, _) in owed.items():
            # Below the minimum, or negative (a reversal after payment): nothing is marked,
            # so the whole balance carries into the next run.
            if total > 0 and total >= affiliates[beneficiary_id].minimum_payout:
                payouts.append(
                    Payout(run=run, affiliate_id=beneficiary_id, amount=total, currency=currency)
                )
        # The rows are locked above, so one UPDATE for the whole batch is safe: nobody else can
        # have put them in a payout since they were read.
        assigned = [
            LedgerEntry(pk=pk, payout=payout)
            for payout in Payout.objects.bulk_create(payouts)
            for pk in owed[(payout.affiliate_id, payout.currency)][1]
        ]
        LedgerEntry.objects.bulk_update(assigned, ["payout"], batch_size=2000)
        made = len(payouts)
        PayoutRun.objects.filter(pk=run.pk).update(
            done_affiliates=F("done_affiliates") + len(affiliate_ids)
        )
    return made


def payout_run_execute(*, run_id: int, progress: Callable[[int], None] | None = None) -> PayoutRun:
    """Work out the run's payouts, a batch of affiliates per transaction. Safe to re-run: an
    affiliate paid in this run is skipped, an entry in any payout is never taken again."""
    run = PayoutRun.objects.get(pk=run_id)
    if run.status not in (PayoutRun.Status.RUNNING, PayoutRun.Status.DRAFT):
        raise PayoutError(f"run {run.pk} is {run.status}")
    affiliate_ids = _candidates(run)
    PayoutRun.objects.filter(pk=run.pk).update(
        total_affiliates=len(affiliate_ids), done_affiliates=0, status=PayoutRun.Status.RUNNING
    )
    for start in range(0, len(affiliate_ids), BATCH):
        batch = affiliate_ids[start : start + BATCH]
        _pay_batch(run, batch)
        if progress:
            progress(len(batch))
    PayoutRun.objects.filter(pk=run.pk).update(
        status=PayoutRun.Status.DRAFT, finished_at=timezone.now()
    )
    run.refresh_from_db()
    made = run.payouts.count()
    notify.notify_managers(
        NoticeKind.PAYOUT_RUN_READY,
        f"Payout run {run.period_start} to {run.period_end} is ready",
        f"{made} payout(s) wait for approval.",
        reverse("admin:payouts_payoutrun_change", args=[run.pk]),
    )
    return run


def _entries_audit(entries: list[int], old: str, new: str, actor: Actor, note: str) -> None:
    kind = ContentType.objects.get_for_model(LedgerEntry)
    AuditEvent.objects.bulk_create(
        [
            AuditEvent(
                content_type=kind,
                object_id=str(pk),
                field="status",
                old=old,
                new=new,
                actor=actor if actor is not None and actor.is_authenticated else None,
                note=note[:500],
            )
            for pk in entries
        ],
        batch_size=2000,
    )


def payout_run_approve(*, run: PayoutRun, actor: Actor) -> PayoutRun:
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if run.status != PayoutRun.Status.DRAFT:
            raise PayoutError(f"only a draft run can be approved; this one is {run.status}")
        for payout in (
            run.payouts.filter(status=Payout.Status.DRAFT)
            .select_related("affiliate__user")
            .order_by("pk")
        ):
            payout.status = Payout.Status.APPROVED
            payout.save(update_fields=["status"])
            audit_record(obj=payout, field="status", old="draft", new="approved", actor=actor)
            invoices.invoice_issue(payout=payout)  # numbered in approval order
            notify.notify_affiliate(
                payout.affiliate,
                NoticeKind.PAYOUT_APPROVED,
                f"Payout approved: {payout.amount} {payout.currency}",
                f"Your payout for {run.period_start} to {run.period_end} is approved and will "
                "be paid soon.",
                reverse("payout-statement", args=[payout.pk]),
            )
        run.status = PayoutRun.Status.APPROVED
        run.save(update_fields=["status"])
        audit_record(obj=run, field="status", old="draft", new="approved", actor=actor)
    return run


def payout_mark_paid(*, payout: Payout, reference: str, actor: Actor) -> Payout:
    """The money left: the payout and its entries are paid, for good."""
    if not reference.strip():
        raise PayoutError("a payment reference is required")
    with transaction.atomic():
        payout = Payout.objects.select_for_update().get(pk=payout.pk)
        if payout.status != Payout.Status.APPROVED:
            raise PayoutError(f"only an approved payout can be paid; this one is {payout.status}")
        entries = list(payout.lines.filter(status=Status.APPROVED).values_list("pk", flat=True))
        LedgerEntry.objects.filter(pk__in=entries).update(status=Status.PAID)
        _entries_audit(entries, Status.APPROVED, Status.PAID, actor, f"payout {payout.pk}")
        payout.status, payout.reference, payout.paid_at = (
            Payout.Status.PAID,
            reference.strip()[:200],
            timezone.now(),
        )
        payout.save(update_fields=["status", "reference", "paid_at"])
        audit_record(
            obj=payout, field="status", old="approved", new="paid", actor=actor, note=reference
        )
        notify.notify_affiliate(
            Affiliate.objects.select_related("user").get(pk=payout.affiliate_id),
            NoticeKind.PAYOUT_PAID,
            f"Payout paid: {payout.amount} {payout.currency}",
            f"We sent {payout.amount} {payout.currency} (reference {payout.reference}).",
            reverse("payout-statement", args=[payout.pk]),
        )
        run = PayoutRun.objects.select_for_update().get(pk=payout.run_id)
        if not run.payouts.exclude(
            status__in=[Payout.Status.PAID, Payout.Status.CANCELLED]
        ).exists():
            old = run.status
            run.status = PayoutRun.Status.PAID
            run.save(update_fields=["status"])
            audit_record(obj=run, field="status", old=old, new="paid", actor=actor)
    return payout


def payout_run_cancel(*, run: PayoutRun, actor: Actor) -> PayoutRun:
    """Drop an unpaid run: its payouts are cancelled and their entries free for the next run."""
    with transaction.atomic():
        run = PayoutRun.objects.select_for_update().get(pk=run.pk)
        if run.payouts.filter(status=Payout.Status.PAID).exists():
            raise PayoutError("a run with paid payouts cannot be cancelled")
        for payout in run.payouts.exclude(status=Payout.Status.CANCELLED).order_by("pk"):
            released = list(payout.lines.values_list("pk", flat=True))
            LedgerEntry.objects.filter(pk__in=released).update(payout=None)
            old = payout.status
            payout.status = Payout.Status.CANCELLED
            payout.save(update_fields=["status"])
            audit_record(
                obj=payout,
                field="status",
                old=old,
                new="cancelled",
                actor=actor,
                note=f"{len(released)} entries released",
            )
        old = run.status
        run.status = PayoutRun.Status.CANCELLED
        run.save(update_fields=["status"])
        audit_record(obj=run, field="status", old=old, new="cancelled", actor=actor)
    return run
