import smtplib

from celery import shared_task
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from affiliates import notify, profile
from affiliates.models import NoticeKind, Notification
from attribution.ingestion import monitor
from attribution.models import Conversion

SILENT_HOURS = 6


@shared_task(
    name="affiliates.send_notification_email",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, ConnectionError, TimeoutError),
    retry_backoff=30,
    max_retries=5,
)
def send_notification_email(notification_id: int) -> bool:
    """Email one notification (idempotent: a sent one is not sent again)."""
    return notify.email_send(notification_id=notification_id)


def _told_today(kind: str, title: str) -> bool:
    since = timezone.now() - timezone.timedelta(hours=24)
    return Notification.objects.filter(kind=kind, title=title, created_at__gte=since).exists()


@shared_task(name="affiliates.apply_setting_changes", ignore_result=True)
def apply_setting_changes() -> int:
    """Affiliates' new time zones and currencies whose day has come (beat, every 5 minutes)."""
    return profile.setting_changes_apply()


@shared_task(name="affiliates.manager_alerts", ignore_result=True)
def manager_alerts() -> int:
    """Tell managers about a review queue above its threshold and silent sources (beat, hourly;
    the same alert at most once a day)."""
    sent = 0
    waiting = Conversion.objects.filter(status=Conversion.Status.PENDING).count()
    if waiting >= settings.REVIEW_QUEUE_ALERT:
        title = f"{waiting} conversions wait for review"
        if not _told_today(NoticeKind.REVIEW_QUEUE, title):
            sent += len(
                notify.notify_managers(
                    NoticeKind.REVIEW_QUEUE,
                    title,
                    f"The review queue holds {waiting} conversions "
                    f"(alert from {settings.REVIEW_QUEUE_ALERT}).",
                    reverse("admin:attribution_conversion_changelist") + "?status=pending",
                )
            )
    for silent in monitor.silent_sources(now=timezone.now(), hours=SILENT_HOURS):
        title = f"No postbacks from {silent['source']} for {SILENT_HOURS} h"
        if not _told_today(NoticeKind.SILENT_SOURCE, title):
            sent += len(
                notify.notify_managers(
                    NoticeKind.SILENT_SOURCE,
                    title,
                    f"The last one came at {silent['last']:%Y-%m-%d %H:%M} UTC.",
                    reverse("admin:attribution_postbacksource_change", args=[silent["source"].pk]),
                )
            )
    return sent
