"""Notifications, both ways: in-app rows (the bell) and an email for each, sent by a worker.

``notify`` writes the rows in the caller's transaction and publishes one email task per row on
commit, by name; the task renders the HTML and text templates and sends through Django's mail.
A user who turned a kind off gets neither. Every email carries a signed one-click unsubscribe
link for its kind."""

import logging
from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core import signing
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from portal.lib import queue

from .models import (
    Affiliate,
    Announcement,
    NoticeKind,
    NoticeOptOut,
    Notification,
)

logger = logging.getLogger(__name__)
User = get_user_model()
UNSUBSCRIBE_SALT = "portal.notify.unsubscribe"


def managers() -> QuerySet:
    return User.objects.filter(is_staff=True, is_active=True).order_by("pk")


def notify(
    *,
    users: Iterable[AbstractBaseUser],
    kind: NoticeKind | str,
    title: str,
    body: str = "",
    url: str = "",
) -> list[Notification]:
    """One notice per user who has not turned ``kind`` off; their emails go after commit."""
    users = [u for u in users if u is not None and u.is_active]
    off = set(
        NoticeOptOut.objects.filter(user__in=users, kind=kind).values_list("user_id", flat=True)
    )
    rows = Notification.objects.bulk_create(
        Notification(user=u, kind=kind, title=title[:200], body=body[:5000], url=url[:500])
        for u in users
        if u.pk not in off
    )
    for row in rows:
        queue.publish_on_commit("affiliates.send_notification_email", row.pk)
    return rows


def notify_affiliate(affiliate: Affiliate, kind: NoticeKind, title: str, body: str = "", url=""):
    return notify(users=[affiliate.user], kind=kind, title=title, body=body, url=url)


def notify_managers(kind: NoticeKind, title: str, body: str = "", url: str = ""):
    return notify(users=managers(), kind=kind, title=title, body=body, url=url)


def unsubscribe_token(user_id: int, kind: str) -> str:
    return signing.dumps({"u": user_id, "k": kind}, salt=UNSUBSCRIBE_SALT)


def unsubscribe_read(token: str) -> tuple[int, str] | None:
    """The (user id, kind) a token names, or None when it is not one of ours."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        user_id, kind = int(data["u"]), str(data["k"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        return None
    return (user_id, kind) if kind in NoticeKind.values else None


def opt_out(*, user_id: int, kind: str) -> None:
    NoticeOptOut.objects.get_or_create(user_id=user_id, kind=kind)


def opt_in(*, user_id: int, kind: str) -> None:
    NoticeOptOut.objects.filter(user_id=user_id, kind=kind).delete()


def email_send(*, notification_id: int) -> bool:
    """Send one notification's email; False if gone, already sent, or nowhere to send it.

    Claimed with a conditional UPDATE first, so two workers never both send it; a failed send
    gives the claim back for the retry.
    """
    notification = Notification.objects.select_related("user").filter(pk=notification_id).first()
    if notification is None or notification.emailed_at or not notification.user.email:
        return False
    claimed = Notification.objects.filter(pk=notification_id, emailed_at__isnull=True).update(
        emailed_at=timezone.now()
    )
    if not claimed:
        return False
    base = settings.PORTAL_URL.rstrip("/")
    unsubscribe = base + reverse(
        "notifications-unsubscribe",
        args=[unsubscribe_token(notification.user_id, notification.kind)],
    )
    context = {
        "n": notification,
        "link": base + notification.url if notification.url.startswith("/") else "",
        "unsubscribe": unsubscribe,
        "kind": NoticeKind(notification.kind).label,
        "portal": base,
    }
    message = EmailMultiAlternatives(
        subject=notification.title,
        body=render_to_string("notifications/email.txt", context),
        to=[notification.user.email],
        headers={
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
    )
    message.attach_alternative(render_to_string("notifications/email.html", context), "text/html")
    try:
        message.send()
    except Exception:
        Notification.objects.filter(pk=notification_id).update(emailed_at=None)
        raise
    return True


def segment_users(announcement: Announcement) -> QuerySet:
    affiliates = Affiliate.objects.filter(status=Affiliate.Status.ACTIVE)
    if announcement.segment == Announcement.Segment.CAMPAIGN:
        affiliates = affiliates.filter(links__campaign=announcement.campaign)
    elif announcement.segment == Announcement.Segment.CURRENCY:
        affiliates = affiliates.filter(currency=announcement.currency.upper())
    return User.objects.filter(affiliate__in=affiliates.values("pk")).distinct().order_by("pk")


@transaction.atomic
def announcement_send(*, announcement: Announcement) -> int:
    """Post an announcement to its segment's inboxes (and emails); returns how many."""
    rows = notify(
        users=segment_users(announcement),
        kind=NoticeKind.ANNOUNCEMENT,
        title=announcement.title,
        body=announcement.body,
        url=reverse("notifications"),
    )
    Announcement.objects.filter(pk=announcement.pk).update(recipients=len(rows))
    return len(rows)


def mark_read(*, user: AbstractBaseUser, ids: list[int] | None = None) -> int:
    unread = Notification.objects.filter(user=user, read_at__isnull=True)
    if ids is not None:
        unread = unread.filter(pk__in=ids)
    return unread.update(read_at=timezone.now())


def unread_count(user: AbstractBaseUser) -> int:
    if not user.is_authenticated:
        return 0
    return Notification.objects.filter(user=user, read_at__isnull=True).count()
