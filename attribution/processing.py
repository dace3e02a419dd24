"""Worker side of ingestion: one inbox row in, one normalised event out, exactly once."""

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import timedelta
from functools import cache
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from affiliates.models import App

from . import crediting, rollup, skadnetwork
from .adapters import NormalisedEvent, PostbackError, get_adapter
from .ingestion import Malformed, clean_text, payload_of
from .models import APPLE_KINDS, ConversionType, Postback, PostbackEvent, SourceKind

logger = logging.getLogger(__name__)

# What common event names mean when a source's own mapping does not say.
DEFAULT_EVENT_MAPPING = {
    "install": ConversionType.INSTALL,
    "registration": ConversionType.REGISTRATION,
    "complete_registration": ConversionType.REGISTRATION,
    "af_complete_registration": ConversionType.REGISTRATION,
    "sign_up": ConversionType.REGISTRATION,
    "signup": ConversionType.REGISTRATION,
    "reg": ConversionType.REGISTRATION,
    "ftd": ConversionType.FTD,
    "first_deposit": ConversionType.FTD,
    "af_first_deposit": ConversionType.FTD,
    "deposit": ConversionType.DEPOSIT,
    "af_deposit": ConversionType.DEPOSIT,
    "purchase": ConversionType.PURCHASE,
    "af_purchase": ConversionType.PURCHASE,
    "withdrawal": ConversionType.WITHDRAWAL,
    "bonus": ConversionType.BONUS,
    "chargeback": ConversionType.CHARGEBACK,
}


def conversion_type_for(*, kind: str, event_name: str, mapping: dict[str, str]) -> str:
    """Our conversion type for a sender's event: the source's mapping, then the defaults."""
    name = event_name.strip().lower()
    own = {str(k).strip().lower(): v for k, v in (mapping or {}).items()}
    if name in own and own[name] in ConversionType.values:
        return own[name]
    if kind in (PostbackEvent.Kind.INSTALL, PostbackEvent.Kind.REATTRIBUTION):
        return ConversionType.INSTALL
    return DEFAULT_EVENT_MAPPING.get(name, ConversionType.CUSTOM)


def _app_for(identifier: str, platform: str) -> App | None:
    ident = identifier.strip()
    if not ident:
        return None
    store_id = ident.removeprefix("id")
    query = Q(bundle_id=ident)
    if store_id.isdigit():
        query |= Q(app_store_id=store_id)
    apps = App.objects.filter(query)
    if platform in ("ios", "android"):
        apps = apps.filter(platform=platform)
    return apps.order_by("pk").first()


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: clean_text(v) if isinstance(v, str) else v for k, v in values.items()}


@cache
def _field_sizes() -> dict[str, int | None]:
    return {f.name: f.max_length for f in PostbackEvent._meta.fields}


def _mmp_event(
    row: Postback, app_for: Callable[[str, str], App | None] = _app_for
) -> dict[str, Any]:
    payload = payload_of(
        method=row.method, query=row.query, body=row.body, content_type=row.content_type
    )
    event: NormalisedEvent = get_adapter(row.kind).parse(payload)
    source = row.source
    app = source.app if source and source.app_id else app_for(event.app_id, event.platform)
    sizes = _field_sizes()
    # Flat values (str, Decimal, datetime, bool): no need for dataclasses.asdict's deep copies.
    fields = {}
    for item in dataclasses.fields(event):
        if item.name in ("source", "dedup_key", "app_id"):
            continue
        value = getattr(event, item.name)
        fields[item.name] = value[: sizes[item.name]] if isinstance(value, str) else value
    return {
        **fields,
        "ip": fields["ip"] or None,
        "app": app,
        "app_identifier": event.app_id[:255],
        "conversion_type": conversion_type_for(
            kind=event.kind,
            event_name=event.event_name,
            mapping=source.event_mapping if source else {},
        ),
    }


def _apple_event(
    row: Postback, app_for: Callable[[str, str], App | None] = _app_for
) -> dict[str, Any]:
    data = json.loads(row.body)
    parsed = (
        skadnetwork.parse_skan(data)
        if row.kind == SourceKind.SKADNETWORK
        else skadnetwork.parse_aak(data)
    )
    skan = dataclasses.asdict(parsed)
    skan["verdict"] = parsed.verdict.value
    # Only a winning postback is an attribution (before 3.0 every postback was a winner).
    kind = (
        PostbackEvent.Kind.INSTALL
        if parsed.did_win is not False and parsed.verdict == skadnetwork.Verdict.VALID
        else PostbackEvent.Kind.REJECTED
    )
    return {
        "kind": kind,
        "event_name": f"{row.kind}:{parsed.conversion_type}",
        "conversion_type": ConversionType.INSTALL,
        "app": app_for(parsed.app_id, "ios"),
        "app_identifier": parsed.app_id,
        "platform": "ios",
        "country": parsed.country[:2],
        "touch_type": parsed.interaction_type[:16],
        "blocked_reason": ""
        if kind == PostbackEvent.Kind.INSTALL
        else parsed.reason[:255] or ("did not win" if parsed.did_win is False else ""),
        "skan": skan,
    }


def postback_process(*, postback_id: int) -> str:
    """Turn one received inbox row into its normalised event and conversion; returns its status.

    Idempotent: a row already handled (or gone) is left alone, the row lock lets one worker in at
    a time, and the event's one-to-one key makes a second event impossible. A worker killed
    mid-way rolls back and leaves the row ``received`` for a redelivery or the sweep.
    """
    # Rollup rows are written last, just before the commit (see rollup.deferred).
    with transaction.atomic(), rollup.deferred():
        row = (
            Postback.objects.select_for_update(of=("self",))
            .select_related("source")
            .filter(pk=postback_id, status=Postback.Status.RECEIVED)
            .first()
        )
        if row is None:
            return "skipped"
        row.attempts += 1
        try:
            values = event_values(row)
        except UNREADABLE as exc:
            row_failed(row, exc)
            return row.status
        event = PostbackEvent(postback=row, source=row.source, **values)
        crediting.devices_lock([event])
        event.save(force_insert=True)
        crediting.conversion_for_event(event=event)
        row.status = Postback.Status.PROCESSED
        row.processed_at = timezone.now()
        row.save(update_fields=["status", "attempts", "processed_at"])
    return row.status


def event_values(row: Postback, app_for: Callable[[str, str], App | None] = _app_for) -> dict:
    """The normalised event's fields for an inbox row; raises when it cannot be read."""
    values = _apple_event(row, app_for) if row.kind in APPLE_KINDS else _mmp_event(row, app_for)
    return _clean(values)


def row_failed(row: Postback, exc: Exception) -> None:
    """Accepted at the door but not readable now (an adapter changed): keep it for a manager
    and for ``reprocess``, never drop it."""
    row.status = Postback.Status.FAILED
    row.reason = f"could not be parsed: {exc}"[:2000]
    row.processed_at = timezone.now()
    row.save(update_fields=["status", "reason", "attempts", "processed_at"])
    logger.warning("postback failed id=%s reason=%s", row.pk, row.reason)


UNREADABLE = (PostbackError, Malformed, skadnetwork.SkanError, ValueError)


def postbacks_process(*, postback_ids: list[int], top_up: int = 0) -> dict[str, int]:
    """Process a batch of inbox rows; returns how many ended in each status.

    On PostgreSQL the batch path (``attribution.batch``) attributes the batch in one
    transaction, the oldest ``top_up`` rows still waiting when that is given; elsewhere (the
    embedded SQLite default) the given rows go one at a time.
    """
    if connection.vendor == "postgresql":
        from .batch import postbacks_attribute

        return postbacks_attribute(postback_ids, top_up=top_up)
    return postbacks_one_by_one(postback_ids)


def postbacks_one_by_one(postback_ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for postback_id in postback_ids:
        status = postback_process(postback_id=postback_id)
        counts[status] = counts.get(status, 0) + 1
    return counts


def postbacks_waiting(*, older_than: timedelta, limit: int) -> list[int]:
    """Ids of rows still ``received`` after ``older_than``: lost to a broker outage, or slow."""
    cutoff = timezone.now() - older_than
    return list(
        Postback.objects.filter(status=Postback.Status.RECEIVED, received_at__lt=cutoff)
        .order_by("received_at")
        .values_list("id", flat=True)[:limit]
    )
