"""Writes of the affiliates domain."""

import logging
import smtplib

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.core.mail import send_mail
from django.db import IntegrityError, models, transaction
from django.db.models import Q, QuerySet
from django.urls import reverse
from rest_framework.authtoken.models import Token

from portal.lib.bulk import insert_many

from . import notify
from .models import (
    Affiliate,
    AuditEvent,
    Campaign,
    NoticeKind,
    TermsAcceptance,
    TermsVersion,
    TrackingLink,
)

logger = logging.getLogger(__name__)

Actor = AbstractBaseUser | AnonymousUser | None


def audit_record(
    *, obj: models.Model, field: str, old: str, new: str, actor: Actor, note: str = ""
) -> AuditEvent:
    """Write one audit row for a change of ``field`` on ``obj``."""
    return AuditEvent.objects.create(
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        field=field,
        old=str(old),
        new=str(new),
        actor=actor if actor is not None and actor.is_authenticated else None,
        note=note[:500],
    )


def audit_bulk(
    objs: list[models.Model], *, field: str, old: str, new: str | None, note: str = ""
) -> None:
    """One audit row for each of ``objs`` (``new`` None: the object's own ``field`` value),
    written in one statement, by the system (no actor)."""
    if not objs:
        return
    content_type = ContentType.objects.get_for_model(objs[0])
    insert_many(
        [
            AuditEvent(
                content_type=content_type,
                object_id=str(obj.pk),
                field=field,
                old=str(old),
                new=str(getattr(obj, field) if new is None else new),
                note=note[:500],
            )
            for obj in objs
        ]
    )


def affiliates_set_status(*, affiliates: QuerySet[Affiliate], status: str, actor: Actor) -> int:
    """Move affiliates to ``status``, one audit row each; returns how many changed."""
    with transaction.atomic():
        changing = list(
            affiliates.exclude(status=status).select_for_update(of=("self",)).order_by("pk")
        )
        for affiliate in changing:
            old = affiliate.status
            affiliate.status = status
            affiliate.save(update_fields=["status"])
            audit_record(obj=affiliate, field="status", old=old, new=status, actor=actor)
            _tell_status(affiliate, old)
    return len(changing)


def _tell_status(affiliate: Affiliate, old: str) -> None:
    if old == Affiliate.Status.PENDING and affiliate.status == Affiliate.Status.ACTIVE:
        notify.notify_affiliate(
            affiliate,
            NoticeKind.APPLICATION_APPROVED,
            "Your application is approved",
            f"Welcome, {affiliate.name}: your account is active. Create your first tracking "
            "link on the dashboard.",
            reverse("affiliate-links"),
        )
    elif affiliate.status == Affiliate.Status.REJECTED:
        notify.notify_affiliate(
            affiliate,
            NoticeKind.APPLICATION_REFUSED,
            "Your application was not accepted",
            "The program has not accepted your application. Reply to your affiliate manager "
            "if you think this is a mistake.",
        )


# What sign-up asks beyond the account (SignupForm): kept on the affiliate.
SIGNUP_PROFILE = ("website", "traffic_sources", "country", "messenger", "company", "vat_id")


def affiliate_apply(
    *,
    username: str,
    email: str,
    password: str,
    name: str,
    time_zone: str,
    currency: str,
    referral_code: str = "",
    profile: dict[str, str] | None = None,
    terms: TermsVersion | None = None,
    ip: str | None = None,
) -> Affiliate | None:
    """A new affiliate's application: a user and a pending affiliate, referred or not.

    None when the username or the email has an account already. The caller answers alike either
    way, so that sign-up tells nobody who has an account here (``signup_mail`` tells the
    address's owner); the password is hashed either way, so the time taken does not tell either.
    """
    users = get_user_model().objects
    taken = Q(username__iexact=username)
    if email:  # no address is nobody's address: it cannot be taken
        taken |= Q(email__iexact=email)
    if users.filter(taken).exists():
        make_password(password)
        return None
    parent = (
        Affiliate.objects.filter(
            referral_code=referral_code, status=Affiliate.Status.ACTIVE
        ).first()
        if referral_code
        else None
    )
    try:
        with transaction.atomic():
            user = users.create_user(username=username, email=email, password=password)
            affiliate = Affiliate.objects.create(
                user=user,
                name=name,
                time_zone=time_zone,
                currency=currency,
                parent=parent,
                **{k: v for k, v in (profile or {}).items() if k in SIGNUP_PROFILE},
            )
            if terms is not None:
                TermsAcceptance.objects.create(user=user, terms=terms, ip=ip)
            notify.notify_managers(
                NoticeKind.NEW_SIGNUP,
                f"New sign-up: {name}",
                f"{name} ({username}, {email}) applied"
                + (f", referred by {parent.name}" if parent else "")
                + ". Approve or refuse the application.",
                reverse("admin:affiliates_affiliate_change", args=[affiliate.pk]),
            )
            return affiliate
    except IntegrityError:  # the same username, taken a moment ago
        return None


def signup_mail(*, email: str, username: str, applied: bool, reset_url: str) -> None:
    """Tell the address given at sign-up what became of it: the application is in, or the
    username or address has an account already (and how to get into it)."""
    if applied:
        subject = "Your affiliate application"
        text = (
            f"Thanks for applying. Your username is {username}. An affiliate manager will review "
            "your application; log in once it is approved to see your dashboard."
        )
    else:
        subject = "Your affiliate application could not be made"
        text = (
            f"Someone (we hope you) applied with this address and the username {username}, but "
            "that username or this address has an account here already. If the account is yours, "
            f"set a new password at {reset_url}; otherwise apply again with another username. "
            "If this was not you, ignore this mail."
        )
    try:
        send_mail(subject, text, None, [email])
    except (OSError, smtplib.SMTPException):
        logger.warning("sign-up mail not sent", exc_info=True)


def link_create(*, affiliate: Affiliate, campaign: Campaign, **fields: str) -> TrackingLink:
    """A new tracking link of ``affiliate`` on ``campaign`` (sub ids, name, deep link)."""
    allowed = {"name", "sub1", "sub2", "sub3", "sub4", "sub5", "deep_link"}
    return TrackingLink.objects.create(
        affiliate=affiliate,
        campaign=campaign,
        **{k: v for k, v in fields.items() if k in allowed and v is not None},
    )


def api_token_renew(*, user: AbstractBaseUser) -> Token:
    """A new API token for ``user``; the old one stops working."""
    with transaction.atomic():
        Token.objects.filter(user=user).delete()
        return Token.objects.create(user=user)


def view_as_record(*, manager: Actor, affiliate: Affiliate, started: bool) -> AuditEvent:
    """A manager began or ended a read-only session of an affiliate's dashboard."""
    return audit_record(
        obj=affiliate,
        field="view_as",
        old="" if started else "viewing",
        new="viewing" if started else "",
        actor=manager,
        note="read-only view of the dashboard " + ("started" if started else "ended"),
    )
