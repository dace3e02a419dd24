"""Writes of the affiliates domain."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.db.models import QuerySet

from portal.lib.bulk import insert_many

from .models import Affiliate, AuditEvent, Campaign, TrackingLink

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
    return len(changing)


def affiliate_apply(
    *,
    username: str,
    email: str,
    password: str,
    name: str,
    time_zone: str,
    currency: str,
    referral_code: str = "",
) -> Affiliate:
    """A new affiliate's application: a user and a pending affiliate, referred or not."""
    parent = (
        Affiliate.objects.filter(
            referral_code=referral_code, status=Affiliate.Status.ACTIVE
        ).first()
        if referral_code
        else None
    )
    with transaction.atomic():
        user = get_user_model().objects.create_user(
            username=username, email=email, password=password
        )
        return Affiliate.objects.create(
            user=user, name=name, time_zone=time_zone, currency=currency, parent=parent
        )


def link_create(*, affiliate: Affiliate, campaign: Campaign, **fields: str) -> TrackingLink:
    """A new tracking link of ``affiliate`` on ``campaign`` (sub ids, name, deep link)."""
    allowed = {"name", "sub1", "sub2", "sub3", "sub4", "sub5", "deep_link"}
    return TrackingLink.objects.create(
        affiliate=affiliate,
        campaign=campaign,
        **{k: v for k, v in fields.items() if k in allowed and v is not None},
    )
