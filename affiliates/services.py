"""Writes of the affiliates domain."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import QuerySet

from .models import Affiliate, AuditEvent

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


def affiliates_set_status(*, affiliates: QuerySet[Affiliate], status: str, actor: Actor) -> int:
    """Move affiliates to ``status``, one audit row each; returns how many changed."""
    with transaction.atomic():
        changing = list(affiliates.exclude(status=status).select_for_update().order_by("pk"))
        for affiliate in changing:
            old = affiliate.status
            affiliate.status = status
            affiliate.save(update_fields=["status"])
            audit_record(obj=affiliate, field="status", old=old, new=status, actor=actor)
    return len(changing)
