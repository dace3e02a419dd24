"""An affiliate's own profile: contact details, time zone and currency, payment details.

A new time zone or currency applies from the start of the affiliate's next day (in the time zone
they have now), so that no day is reported half in one zone or booked half in one currency: the
change waits as a ``SettingChange`` row, which the beat's ``setting_changes_apply`` carries out
when it is due. The rows are the history shown on the profile.

Payment details are where the money goes, so a change takes three steps: the affiliate gives
them with their password; a link mailed to the account's address confirms them (they are in use
from then on); and the affiliate's payouts are held until a manager confirms the change, so a
stolen password alone cannot redirect a payout. Every step is audited and told to both sides.
"""

import logging
import secrets
import smtplib
import zoneinfo
from datetime import datetime, timedelta

from django.core.mail import send_mail
from django.db import transaction
from django.db.models import QuerySet
from django.urls import reverse
from django.utils import timezone

from . import notify
from .models import Affiliate, NoticeKind, PaymentDetailsChange, SettingChange
from .services import Actor, audit_record

logger = logging.getLogger(__name__)
Status = PaymentDetailsChange.Status
CONTACT_FIELDS = (
    "website",
    "traffic_sources",
    "country",
    "messenger",
    "company",
    "vat_id",
    "address",
)
PAYMENT_FIELDS = ("method", "account_name", "iban", "bic", "paypal_email", "wallet", "network")
CONFIRM_WITHIN = timedelta(hours=48)


def contact_update(*, affiliate: Affiliate, email: str, changes: dict, actor: Actor) -> list[str]:
    """Save the affiliate's contact details; each changed field is audited. Returns their names."""
    changed = []
    with transaction.atomic():
        for name in CONTACT_FIELDS:
            if name not in changes:
                continue
            old, new = getattr(affiliate, name), changes[name] or ""
            if old != new:
                audit_record(
                    obj=affiliate, field=name, old=str(old)[:255], new=str(new)[:255], actor=actor
                )
                setattr(affiliate, name, new)
                changed.append(name)
        if changed:
            affiliate.save(update_fields=changed)
        user = affiliate.user
        if email and email != user.email:
            audit_record(obj=affiliate, field="email", old=user.email, new=email, actor=actor)
            user.email = email
            user.save(update_fields=["email"])
            changed.append("email")
    return changed


def next_day_start(affiliate: Affiliate, now: datetime | None = None) -> datetime:
    """Midnight at the start of the affiliate's next day, in their current time zone."""
    zone = zoneinfo.ZoneInfo(affiliate.time_zone)
    today = (now or timezone.now()).astimezone(zone).date()
    return datetime.combine(today + timedelta(days=1), datetime.min.time(), zone)


def settings_change_request(
    *, affiliate: Affiliate, changes: dict[str, str], actor: Actor
) -> list[SettingChange]:
    """Schedule a new time zone and/or currency from the affiliate's next day; a change of the
    same field still waiting is replaced. Returns the changes made (none: nothing differs)."""
    made = []
    now = timezone.now()
    with transaction.atomic():
        waiting = SettingChange.objects.select_for_update().filter(
            affiliate=affiliate, applied_at__isnull=True, cancelled_at__isnull=True
        )
        for field in SettingChange.Field.values:
            new = changes.get(field)
            if not new:
                continue
            pending = [c for c in waiting if c.field == field]
            if pending and pending[0].new == new:
                continue  # already asked for
            SettingChange.objects.filter(pk__in=[c.pk for c in pending]).update(cancelled_at=now)
            if new == getattr(affiliate, field):
                continue  # back to what it is: the change asked for before is cancelled
            change = SettingChange.objects.create(
                affiliate=affiliate,
                field=field,
                old=getattr(affiliate, field),
                new=new,
                effective_at=next_day_start(affiliate, now),
                requested_by=actor if getattr(actor, "pk", None) else None,
            )
            audit_record(
                obj=affiliate,
                field=field,
                old=change.old,
                new=new,
                actor=actor,
                note=f"from {change.effective_at:%Y-%m-%d %H:%M %Z}",
            )
            made.append(change)
    return made


def setting_changes_apply(now: datetime | None = None) -> int:
    """Carry out the time zone and currency changes now due; returns how many."""
    now = now or timezone.now()
    done = 0
    due = SettingChange.objects.filter(
        applied_at__isnull=True, cancelled_at__isnull=True, effective_at__lte=now
    ).values_list("pk", flat=True)
    for pk in list(due[:1000]):
        with transaction.atomic():
            change = (
                SettingChange.objects.select_for_update()
                .select_related("affiliate")
                .filter(pk=pk, applied_at__isnull=True, cancelled_at__isnull=True)
                .first()
            )
            if change is None:
                continue
            affiliate = Affiliate.objects.select_for_update().get(pk=change.affiliate_id)
            setattr(affiliate, change.field, change.new)
            affiliate.save(update_fields=[change.field])
            change.applied_at = now
            change.save(update_fields=["applied_at"])
            audit_record(
                obj=affiliate,
                field=change.field,
                old=change.old,
                new=change.new,
                actor=None,
                note="applied: the affiliate's new day began",
            )
            done += 1
    return done


def payment_change_request(
    *, affiliate: Affiliate, details: dict, confirm_url: str, actor: Actor
) -> PaymentDetailsChange:
    """New payment details, waiting for the affiliate to confirm them by the mailed link.
    ``confirm_url`` has ``{token}`` where the change's token goes."""
    with transaction.atomic():
        PaymentDetailsChange.objects.filter(
            affiliate=affiliate, status=Status.AWAITING_EMAIL
        ).update(status=Status.CANCELLED)
        change = PaymentDetailsChange.objects.create(
            affiliate=affiliate,
            token=secrets.token_urlsafe(32),
            **{k: details.get(k) or "" for k in PAYMENT_FIELDS},
        )
        audit_record(
            obj=affiliate,
            field="payment_details",
            old="",
            new="requested",
            actor=actor,
            note=change.summary(),
        )
        link = confirm_url.format(token=change.token)
        address = affiliate.user.email
        transaction.on_commit(lambda: _confirmation_mail(address, change.summary(), link))
    return change


def _confirmation_mail(address: str, summary: str, link: str) -> None:
    try:
        send_mail(
            "Confirm your new payment details",
            f"You (we hope) asked to be paid here from now on:\n\n{summary}\n\nConfirm within 48 "
            f"hours: {link}\n\nIf this was not you, do not click: change your password and tell "
            "your affiliate manager.",
            None,
            [address],
        )
    except (OSError, smtplib.SMTPException):
        logger.warning("payment details confirmation mail not sent", exc_info=True)


def payment_change_confirm(*, affiliate: Affiliate, token: str) -> PaymentDetailsChange | None:
    """The mailed link was followed: the details are in use, payouts held for a manager. None
    when the link is unknown, another's, used, replaced or too old."""
    with transaction.atomic():
        change = (
            PaymentDetailsChange.objects.select_for_update()
            .filter(
                affiliate=affiliate,
                token=token,
                status=Status.AWAITING_EMAIL,
                created_at__gte=timezone.now() - CONFIRM_WITHIN,
            )
            .first()
        )
        if change is None:
            return None
        PaymentDetailsChange.objects.filter(
            affiliate=affiliate, status=Status.AWAITING_MANAGER
        ).update(status=Status.CANCELLED)
        change.status, change.email_confirmed_at = Status.AWAITING_MANAGER, timezone.now()
        change.save(update_fields=["status", "email_confirmed_at"])
        old = affiliate.payment_details
        affiliate.payment_details = change.summary()
        affiliate.save(update_fields=["payment_details"])
        audit_record(
            obj=affiliate,
            field="payment_details",
            old=old[:255],
            new=affiliate.payment_details[:255],
            actor=affiliate.user,
            note="confirmed by email; payouts held for a manager",
        )
        notify.notify_affiliate(
            affiliate,
            NoticeKind.PAYMENT_DETAILS,
            "Your payment details were changed",
            f"From now on: {change.summary()}. Your next payout waits for your manager to "
            "confirm the change. If this was not you, contact your manager at once.",
            reverse("affiliate-profile"),
        )
        notify.notify_managers(
            NoticeKind.PAYMENT_DETAILS,
            f"{affiliate.name} changed their payment details",
            f"{change.summary()}. Their payouts are held until the change is confirmed.",
            reverse("admin:affiliates_paymentdetailschange_change", args=[change.pk]),
        )
    return change


def payment_change_approve(*, change: PaymentDetailsChange, actor: Actor) -> PaymentDetailsChange:
    """A manager checked the change: the affiliate's payouts are no longer held for it."""
    with transaction.atomic():
        change = PaymentDetailsChange.objects.select_for_update().get(pk=change.pk)
        if change.status != Status.AWAITING_MANAGER:
            return change
        change.status = Status.CONFIRMED
        change.manager_confirmed_at, change.manager_confirmed_by = timezone.now(), actor
        change.save(update_fields=["status", "manager_confirmed_at", "manager_confirmed_by"])
        audit_record(
            obj=change.affiliate,
            field="payment_details",
            old="held",
            new="confirmed",
            actor=actor,
            note=change.summary(),
        )
    return change


def held_affiliates() -> QuerySet:
    """Ids of affiliates whose payouts wait for a manager to confirm new payment details."""
    return PaymentDetailsChange.objects.filter(status=Status.AWAITING_MANAGER).values(
        "affiliate_id"
    )
