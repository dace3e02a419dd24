"""Try a postback: how a pasted URL or body would be read, keyed and credited, storing nothing.

Pure reads: a dry run of the worker's step. It runs the same code as the door and the worker
(``parsing.reading.read_postback``: the source's adapter with its settings;
``normalise.event_values``, ``crediting.decide.build_conversion``) on unsaved rows, so what a
manager sees is what a real postback would get, and nothing is counted, stored or sent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from django.utils import timezone

from attribution.crediting.decide import build_conversion
from attribution.models import Conversion, Postback, PostbackEvent, PostbackSource
from attribution.parsing.adapters import ADAPTERS, NormalisedEvent, PostbackError, SourceSettings
from attribution.parsing.reading import read_postback
from attribution.parsing.wire import Malformed, bounded_key
from attribution.processing.normalise import event_values

__all__ = ["Trial", "postback_try"]


@dataclass
class Trial:
    """What would happen to the pasted postback."""

    error: str = ""
    http_status: int = 200
    event: NormalisedEvent | None = None
    dedup_key: str = ""
    duplicate_of: int | None = None  # an inbox row already stored under the same key
    conversion_type: str = ""
    affiliate: str = ""
    campaign: str = ""
    method: str = ""
    status: str = ""
    reason: str = ""
    detail: str = ""
    claim_key: str = ""
    claim_held_by: int | None = None  # the conversion that already holds the claim
    fields: list[tuple[str, Any]] = field(default_factory=list)


def _split(text: str) -> tuple[str, str, str]:
    """(method, query, body) from what was pasted: a URL, a query string or a body."""
    text = text.strip()
    if text.startswith(("{", "[")):
        return "POST", "", text
    if "://" in text or text.startswith("/"):
        return "GET", urlsplit(text).query, ""
    return "GET", text.removeprefix("?"), ""


def postback_try(*, source: PostbackSource, pasted: str, body: str = "") -> Trial:
    """Read ``pasted`` (a URL, a query string or a JSON body; ``body`` adds a POST body to a
    URL) as ``source`` would receive it, and say what it would become."""
    if source.kind not in ADAPTERS:
        return Trial(
            error=f"{source.get_kind_display()} postbacks cannot be tried here", http_status=400
        )
    method, query, pasted_body = _split(pasted)
    body = body.strip() or pasted_body
    if body:
        method = "POST"
    content_type = (
        "application/json"
        if body.lstrip().startswith(("{", "["))
        else ("application/x-www-form-urlencoded" if body else "")
    )
    try:
        event = read_postback(
            kind=source.kind,
            method=method,
            query=query,
            body=body,
            content_type=content_type,
            event_mapping=source.event_mapping,
            settings=SourceSettings(revenue_unit=source.revenue_unit),
        ).event
    except (Malformed, PostbackError) as exc:
        return Trial(error=str(exc), http_status=400)

    trial = Trial(event=event, dedup_key=bounded_key(event.dedup_key))
    trial.duplicate_of = (
        Postback.objects.filter(source=source, dedup_key=trial.dedup_key)
        .values_list("pk", flat=True)
        .first()
    )
    row = Postback(
        source=source,
        kind=source.kind,
        method=method,
        query=query,
        body=body,
        content_type=content_type,
        received_at=timezone.now(),
        dedup_key=trial.dedup_key,
    )
    values = event_values(row)
    pending = PostbackEvent(postback=row, source=source, **values)
    conversion = build_conversion(pending)
    trial.conversion_type = pending.conversion_type
    trial.affiliate = str(conversion.affiliate) if conversion.affiliate_id else ""
    trial.campaign = str(conversion.campaign) if conversion.campaign_id else ""
    trial.method = conversion.method
    trial.status, trial.reason, trial.detail = (
        conversion.status,
        conversion.reason,
        conversion.detail,
    )
    trial.claim_key = conversion.claim_key
    trial.claim_held_by = (
        Conversion.objects.filter(claim_key=conversion.claim_key, is_winner=True)
        .values_list("pk", flat=True)
        .first()
    )
    trial.fields = [
        (name, value)
        for name, value in values.items()
        if value not in ("", None, False) and name not in ("app",)
    ]
    if pending.app is not None:
        trial.fields.append(("app", str(pending.app)))
    return trial
