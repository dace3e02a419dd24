"""Postback ingestion: a raw request in, one durable inbox row out, before the sender hears 200.

The hot path does the least that makes the answer honest: find the source by its token, check the
sender, parse just enough to form the natural dedup key (and to say 400 to malformed input), insert
one row with ``ON CONFLICT DO NOTHING`` (on PostgreSQL with the rows of concurrent requests:
``groupcommit``), and hand its id to the workers after commit (in batches: ``handoff``).
"""

import hashlib
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from attribution.ingestion import groupcommit, handoff
from attribution.models import Postback, PostbackSource, SourceKind
from attribution.parsing import skadnetwork
from attribution.parsing.adapters import PostbackError, SourceSettings
from attribution.parsing.reading import read_postback
from attribution.parsing.wire import Malformed, bounded_key, clean_text, signature_matches
from portal.lib.networks import sender_allowed

MAX_BODY = 64 * 1024

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,64}")


MMP_KINDS = ("appsflyer", "adjust", "branch", "singular", "kochava", "s2s")


KEPT_HEADERS = ("HTTP_USER_AGENT", "CONTENT_TYPE", "HTTP_X_SIGNATURE", "HTTP_X_FORWARDED_FOR")


@dataclass
class Outcome:
    """What the sender is told, and which inbox row (if any) now holds their request."""

    http_status: int
    body: dict[str, Any]
    postback_id: int | None = None
    created: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SourceRef:
    """What the hot path needs of a postback source."""

    pk: int
    hmac_secret: str
    allowed_networks: str
    is_active: bool
    event_mapping: dict[str, Any]
    revenue_unit: str


def _source_sql() -> str:
    table = connection.ops.quote_name(PostbackSource._meta.db_table)
    # Written out: compiling the equivalent queryset cost more CPU than PostgreSQL spends on it
    # (bench/postbacks.py). Both tokens are indexed; the current one wins over a previous one.
    return (
        "SELECT id, hmac_secret, allowed_networks, is_active, token = %s, "  # noqa: S608
        f"previous_token_valid_until, event_mapping, revenue_unit FROM {table} "
        "WHERE kind = %s AND (token = %s OR (previous_token = %s AND "
        "previous_token_valid_until > %s)) ORDER BY (token = %s) DESC LIMIT 1"
    )


# (kind, token) -> (cached until, on time.monotonic(); the source; until when a previous token
# is good, None for a current one). Only tokens that name a source are kept, so its size is
# bounded by the sources, whatever senders try.
_sources: dict[tuple[str, str], tuple[float, SourceRef, datetime | None]] = {}


def find_source(*, kind: str, token: str, now: datetime) -> SourceRef | None:
    """The source a token names (its current token, or the previous one within its grace).

    Each web process keeps what it found for POSTBACK_SOURCE_CACHE_SECONDS: an MMP sends the
    same few tokens all day, and the lookup cost as much CPU as the rest of the request. A
    change to a source (deactivated, secret or networks changed, token rotated) clears this
    process's copy at once and reaches the others within those seconds; a previous token stops
    working at its deadline whatever is kept.
    """
    key = (kind, token)
    kept = _sources.get(key)
    if kept is not None and kept[0] > time.monotonic() and (kept[2] is None or kept[2] > now):
        return kept[1]
    at = connection.ops.adapt_datetimefield_value(now)
    with connection.cursor() as cursor:
        cursor.execute(_source_sql(), [token, kind, token, token, at, token])
        row = cursor.fetchone()
    if row is None:
        _sources.pop(key, None)
        return None
    mapping = json.loads(row[6]) if isinstance(row[6], str) else row[6]  # SQLite: text
    source = SourceRef(row[0], row[1], row[2], bool(row[3]), mapping or {}, row[7])
    seconds = settings.POSTBACK_SOURCE_CACHE_SECONDS
    if seconds > 0:
        _sources[key] = (time.monotonic() + seconds, source, None if row[4] else _aware(row[5]))
    return source


def _aware(value: datetime | str) -> datetime:
    """A timestamp from a written-out query: SQLite gives it naive (or as text), in UTC."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return timezone.make_aware(value, UTC) if timezone.is_naive(value) else value


@receiver(post_save, sender=PostbackSource)
@receiver(post_delete, sender=PostbackSource)
def _forget_sources(**kwargs: Any) -> None:
    _sources.clear()


def _headers(meta: Mapping[str, Any]) -> dict[str, str]:
    kept = {}
    for key, value in meta.items():
        if key in KEPT_HEADERS or (key.startswith("HTTP_X_") and len(kept) < 24):
            kept[key.removeprefix("HTTP_").lower().replace("_", "-")] = clean_text(str(value))[:512]
    return kept


def _insert(row: dict[str, Any]) -> tuple[int, bool]:
    """INSERT ... ON CONFLICT DO NOTHING: (id, True) when new, (existing id, False) on a repeat.

    One statement for a new postback; a repeat costs one more SELECT. Concurrent repeats on
    PostgreSQL wait on the unique index and then see the winner's row.
    """
    columns = list(row)
    table = Postback._meta.db_table
    quote = connection.ops.quote_name
    sql = (
        f"INSERT INTO {quote(table)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING RETURNING id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, list(row.values()))
        inserted = cursor.fetchone()
    if inserted:
        return inserted[0], True
    existing = Postback.objects.filter(
        source_id=row["source_id"], kind=row["kind"], dedup_key=row["dedup_key"]
    ).values_list("id", flat=True)
    return existing.get(), False


def _row(
    *,
    source_id: int | None,
    kind: str,
    method: str,
    query: str,
    body: str,
    meta: Mapping[str, Any],
    remote_addr: str | None,
    received_at: datetime,
    dedup_key: str,
    status: str,
    reason: str = "",
    signature: str = "",
) -> dict[str, Any]:
    ops = connection.ops
    return {
        "source_id": source_id,
        "kind": kind,
        "method": method,
        "query": clean_text(query),
        "body": clean_text(body),
        "content_type": clean_text(str(meta.get("CONTENT_TYPE", "")))[:200],
        "headers": json.dumps(_headers(meta)),
        "remote_addr": ops.adapt_ipaddressfield_value(remote_addr),
        "received_at": ops.adapt_datetimefield_value(received_at),
        "dedup_key": bounded_key(dedup_key),
        "status": status,
        "reason": reason,
        "signature": signature,
        "attempts": 0,
        "processed_at": None,
    }


def _store(row: dict[str, Any], *, hand_off: bool = True) -> tuple[int, bool]:
    waiting = hand_off and row["status"] == Postback.Status.RECEIVED
    if groupcommit.enabled():
        postback_id, created = groupcommit.committer().submit(row)
        if created and waiting:
            handoff.postback_stored(postback_id)  # committed already, by the committer
        return postback_id, created
    postback_id, created = _insert(row)
    if created and waiting:
        transaction.on_commit(lambda: handoff.postback_stored(postback_id))
    return postback_id, created


def _raw_key(method: str, query: str, body: str) -> str:
    digest = hashlib.sha256(f"{method}\n{query}\n{body}".encode()).hexdigest()
    return f"raw:{digest}"


@groupcommit.counted
def postback_ingest(
    *,
    kind: str,
    token: str,
    method: str,
    query: str,
    body: bytes,
    meta: Mapping[str, Any],
    remote_addr: str | None,
    hand_off: bool = True,
) -> Outcome:
    """Take one MMP or operator postback: store it once and say what happened.

    ``hand_off=False`` is for a caller that attributes the stored row itself, in its own
    transaction (the demo seed): no task is published for it, since a worker would find it done.
    """
    now = timezone.now()
    if kind not in MMP_KINDS:
        return Outcome(404, {"error": f"unknown postback source {kind!r}"})
    # Tokens are URL-safe base64 (secrets.token_urlsafe); anything else names no source, and
    # must not reach the database (a NUL cannot even be a PostgreSQL parameter).
    source = find_source(kind=kind, token=token[:64], now=now) if _TOKEN.fullmatch(token) else None
    if source is None:
        return Outcome(404, {"error": "unknown token for this source"})
    if not source.is_active:
        return Outcome(403, {"error": "this integration is disabled"})
    if not sender_allowed(source.allowed_networks, remote_addr):
        return Outcome(403, {"error": f"sender address {remote_addr} is not allowed"})
    if source.hmac_secret:
        signed = body if method == "POST" else query.encode()
        if not signature_matches(source.hmac_secret, signed, str(meta.get("HTTP_X_SIGNATURE", ""))):
            return Outcome(403, {"error": "X-Signature does not match (sha256 HMAC)"})

    # What is stored is what is read, here and in the worker: the text without control
    # characters (PostgreSQL cannot hold NUL), parsed by the same function.
    text = clean_text(body.decode("utf-8", errors="replace"))
    query = clean_text(query)
    content_type = clean_text(str(meta.get("CONTENT_TYPE", "")))[:200]
    common = {
        "source_id": source.pk,
        "kind": kind,
        "method": method,
        "query": query,
        "body": text,
        "meta": meta,
        "remote_addr": remote_addr,
        "received_at": now,
    }
    try:
        event = read_postback(
            kind=kind,
            method=method,
            query=query,
            body=text,
            content_type=content_type,
            event_mapping=source.event_mapping,
            # As the worker reads it: the source's settings (Adjust's revenue in cents, ...).
            settings=SourceSettings(revenue_unit=source.revenue_unit),
        ).event
    except (Malformed, PostbackError) as exc:
        reason = str(exc)
        postback_id, _ = _store(
            _row(
                **common,
                dedup_key=_raw_key(method, query, text),
                status=Postback.Status.REJECTED,
                reason=reason,
            )
        )
        return Outcome(400, {"status": "rejected", "error": reason, "id": postback_id}, postback_id)

    postback_id, created = _store(
        _row(**common, dedup_key=event.dedup_key, status=Postback.Status.RECEIVED),
        hand_off=hand_off,
    )
    status = "accepted" if created else "duplicate"
    return Outcome(200, {"status": status, "id": postback_id}, postback_id, created)


def apple_ingest(
    *, kind: str, body: bytes, meta: Mapping[str, Any], remote_addr: str | None
) -> Outcome:
    """Take one SKAdNetwork or AdAttributionKit postback at Apple's fixed path.

    There is no token: the signature is the credential. An invalid one is stored as rejected and
    answered 200, since a retry cannot fix it; a development-key one is stored but never counted.
    """
    now = timezone.now()
    text = clean_text(body.decode("utf-8", errors="replace"))  # as stored, as the worker reads
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return Outcome(400, {"error": f"body is not valid JSON: {exc}"})
    try:
        parsed = (
            skadnetwork.parse_skan(data)
            if kind == SourceKind.SKADNETWORK
            else skadnetwork.parse_aak(data)
        )
    except skadnetwork.SkanError as exc:
        return Outcome(400, {"error": str(exc)})

    verdict = parsed.verdict.value
    rejected = parsed.verdict == skadnetwork.Verdict.INVALID
    postback_id, created = _store(
        _row(
            source_id=None,
            kind=kind,
            method="POST",
            query="",
            body=text,
            meta=meta,
            remote_addr=remote_addr,
            received_at=now,
            # SKAN 4.0 sends up to three postbacks (one per conversion window) per install.
            dedup_key=f"{parsed.dedup_key}:{parsed.postback_sequence_index}",
            status=Postback.Status.REJECTED if rejected else Postback.Status.RECEIVED,
            reason=parsed.reason if rejected else "",
            signature=verdict,
        )
    )
    status = "rejected" if rejected else ("accepted" if created else "duplicate")
    answer = {"status": status, "signature": verdict, "id": postback_id}
    if parsed.reason:
        answer["reason"] = parsed.reason
    return Outcome(200, answer, postback_id, created)
