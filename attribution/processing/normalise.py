"""Worker side of ingestion: one inbox row in, one normalised event out, exactly once."""

import dataclasses
import json
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from django.db.models import Q
from django.utils import timezone

from affiliates.models import App
from attribution.models import APPLE_KINDS, ConversionType, Postback, PostbackEvent, SourceKind
from attribution.parsing import skadnetwork
from attribution.parsing.adapters import DEFAULT_SETTINGS, PostbackError, SourceSettings
from attribution.parsing.reading import read_postback
from attribution.parsing.wire import Malformed, clean_text

logger = logging.getLogger(__name__)


def app_for_identifier(identifier: str, platform: str) -> App | None:
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
    row: Postback, app_for: Callable[[str, str], App | None] = app_for_identifier
) -> dict[str, Any]:
    source = row.source
    # The door's own reading of the same stored text: what it accepted, this reads alike.
    reading = read_postback(
        kind=row.kind,
        method=row.method,
        query=row.query,
        body=row.body,
        content_type=row.content_type,
        event_mapping=source.event_mapping if source else {},
        settings=SourceSettings(revenue_unit=source.revenue_unit) if source else DEFAULT_SETTINGS,
    )
    event = reading.event
    app = source.app if source and source.app_id else app_for(event.app_id, event.platform)
    sizes = _field_sizes()
    # Flat values (str, Decimal, datetime, bool): no need for dataclasses.asdict's deep copies.
    fields = {}
    for item in dataclasses.fields(event):
        if item.name in ("source", "dedup_key", "app_id", "event_token"):
            continue
        value = getattr(event, item.name)
        fields[item.name] = value[: sizes[item.name]] if isinstance(value, str) else value
    return {
        **fields,
        "ip": fields["ip"] or None,
        "app": app,
        "app_identifier": event.app_id[:255],
        "conversion_type": reading.conversion_type,
    }


def _apple_event(
    row: Postback, app_for: Callable[[str, str], App | None] = app_for_identifier
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


def event_values(
    row: Postback, app_for: Callable[[str, str], App | None] = app_for_identifier
) -> dict:
    """The normalised event's fields for an inbox row; raises when it cannot be read."""
    values = _apple_event(row, app_for) if row.kind in APPLE_KINDS else _mmp_event(row, app_for)
    return _clean(values)


def row_failed(row: Postback, exc: Exception | str, *, what: str = "could not be parsed") -> None:
    """Accepted at the door but not processable now (an adapter changed, a value the database
    refused): keep it for a manager to re-run from ingestion health, never drop it."""
    row.status = Postback.Status.FAILED
    row.reason = f"{what}: {exc}"[:2000]
    row.processed_at = timezone.now()
    row.save(update_fields=["status", "reason", "attempts", "processed_at"])
    logger.warning("postback failed id=%s reason=%s", row.pk, row.reason)


UNREADABLE = (PostbackError, Malformed, skadnetwork.SkanError, ValueError)
