"""Another platform's history moving in: its clicks, and its conversions as processed inbox rows.

The program importer (``affiliates.importing``) checks an export and resolves its affiliates,
campaigns and links; what it hands here is clean and typed. This module is the one place outside
the worker that writes clicks, inbox rows, events, conversions and identities, so those tables keep
one writer each. An imported conversion is an inbox row of kind ``import`` (dedup key
``import:<external_id>``), already processed, with its event and conversion: history was paid on
the old platform, so conversions are ``ledger_synced`` and get no ledger entries.
"""

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import islice
from typing import Any

from django.db import connection
from django.db.models import QuerySet

from affiliates.models import Campaign, Platform
from attribution.models import (
    Channel,
    Click,
    Conversion,
    ConversionType,
    Identity,
    Method,
    Postback,
    PostbackEvent,
    Reason,
    SourceKind,
)
from payouts import cohort_facts

IMPORT_METHOD = "IMPORT"
SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")
CHUNK = 500  # keys per IN (...) lookup, rows per INSERT
IDENTITY_TYPES = (ConversionType.INSTALL, ConversionType.REGISTRATION, ConversionType.FTD)
# The order of the values ``clicks_import`` inserts.
CLICK_COLUMNS = (
    "click_id",
    "link",
    "affiliate",
    "campaign",
    "created_at",
    "ip",
    "user_agent",
    "platform",
    "country",
    *SUBS,
    "gaid",
    "idfa",
    "referrer",
)

Progress = Callable[[int], Any]


@dataclass
class HistoricConversion:
    """One conversion of the export, checked: ids resolved, values typed.

    ``affiliate_id`` and ``campaign_id`` are None where the export leaves them to the click.
    ``existing`` is the conversion an earlier import of the same ``external_id`` made.
    """

    external_id: str
    line: int
    raw: dict[str, str]
    type: str
    status: str
    occurred_at: datetime
    click_id: str
    affiliate_id: int | None
    campaign_id: int | None
    revenue: Decimal | None
    currency: str
    player_id: str
    platform: str
    country: str
    existing: Conversion | None = None

    @property
    def dedup_key(self) -> str:
        return f"import:{self.external_id}"


def _chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def _pairs(rows: QuerySet, key: str, values: list) -> Iterator[tuple[Any, int]]:
    for batch in _chunks(values):
        yield from rows.filter(**{f"{key}__in": batch}).values_list(key, "pk")


def clicks_import(values: Iterable[tuple], *, progress: Progress) -> None:
    """Insert clicks given as tuples in ``CLICK_COLUMNS`` order, the fastest way each database
    has: COPY on PostgreSQL, executemany on SQLite (values are already clean and typed: no model
    instances, no per-field preparation)."""
    quote = connection.ops.quote_name
    table = quote(Click._meta.db_table)
    columns = ", ".join(quote(Click._meta.get_field(name).column) for name in CLICK_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for batch in _chunks(values, 5000):
                    for row in batch:
                        copy.write_row(row)
                    progress(len(batch))
            return
        moment = connection.ops.adapt_datetimefield_value
        places = ", ".join(["%s"] * len(CLICK_COLUMNS))
        sql = f"INSERT INTO {table} ({columns}) VALUES ({places})"  # noqa: S608
        for batch in _chunks(values, 2000):
            cursor.executemany(sql, [(*v[:4], moment(v[4]), *v[5:]) for v in batch])
            progress(len(batch))


def conversions_import(
    rows: list[HistoricConversion], *, now: datetime, progress: Progress
) -> list[tuple[Conversion, str, str]]:
    """Write new conversions and update earlier imports of the same ones.

    Returns each updated conversion whose affiliate or status changed, with the old and new
    ``affiliate/status``, for the importer's audit rows.
    """
    clicks: dict[str, Click] = {}
    for batch in _chunks({r.click_id for r in rows if r.click_id}):
        for click in Click.objects.filter(click_id__in=batch).only(
            "pk", "click_id", "platform", "country", "created_at", "affiliate_id", "campaign_id"
        ):
            clicks[click.click_id] = click
    brands = dict(Campaign.objects.values_list("pk", "brand_id"))
    new = [r for r in rows if r.existing is None]
    _insert(new, clicks, brands, now)
    progress(len(new))
    changed = []
    for row in rows:
        if row.existing is not None:
            change = _update(row, _attribution(row, clicks, brands))
            if change is not None:
                changed.append(change)
            progress(1)
    return changed


def _insert(
    new: list[HistoricConversion], clicks: dict[str, Click], brands: dict[int, int], now: datetime
) -> None:
    Postback.objects.bulk_create(
        [
            Postback(
                kind=SourceKind.IMPORT,
                method=IMPORT_METHOD,
                body=json.dumps(r.raw, ensure_ascii=False),
                content_type="application/json",
                received_at=now,
                dedup_key=r.dedup_key,
                status=Postback.Status.PROCESSED,
                reason=f"imported from conversions.csv line {r.line}",
                attempts=1,
                processed_at=now,
            )
            for r in new
        ],
        batch_size=CHUNK,
    )
    postbacks = dict(
        _pairs(
            Postback.objects.filter(kind=SourceKind.IMPORT, source__isnull=True),
            "dedup_key",
            [r.dedup_key for r in new],
        )
    )
    resolved = [(r, _attribution(r, clicks, brands)) for r in new]
    PostbackEvent.objects.bulk_create(
        [_event(r, a, PostbackEvent(postback_id=postbacks[r.dedup_key])) for r, a in resolved],
        batch_size=CHUNK,
    )
    events = dict(_pairs(PostbackEvent.objects, "postback_id", list(postbacks.values())))
    conversions = [
        _conversion(r, a, Conversion(event_id=events[postbacks[r.dedup_key]])) for r, a in resolved
    ]
    Conversion.objects.bulk_create(conversions, batch_size=CHUNK)
    # No ledger runs for them (they were paid elsewhere): the cohort report learns of the
    # players here.
    cohort_facts.mark_keys_stale(c.player_key for c in conversions)
    winners = dict(
        _pairs(
            Conversion.objects.filter(is_winner=True),
            "claim_key",
            [c.claim_key for c in conversions],
        )
    )
    Identity.objects.bulk_create(
        [
            Identity(
                key=c.player_key,
                conversion_id=winners[c.claim_key],
                occurred_at=c.occurred_at,
            )
            for c in conversions
            if c.player_key and c.type in IDENTITY_TYPES and c.status != Conversion.Status.REJECTED
        ],
        batch_size=CHUNK,
        ignore_conflicts=True,
    )


def _attribution(row: HistoricConversion, clicks: dict[str, Click], brands: dict) -> dict:
    click = clicks.get(row.click_id) if row.click_id else None
    affiliate_id = row.affiliate_id if row.affiliate_id is not None else click.affiliate_id
    campaign_id = row.campaign_id if row.campaign_id is not None else click.campaign_id
    platform = row.platform or (click.platform if click else "") or Platform.WEB
    brand_id = brands.get(campaign_id)
    return {
        "click": click,
        "affiliate_id": affiliate_id,
        "campaign_id": campaign_id,
        "brand_id": brand_id,
        "platform": platform,
        "country": row.country or (click.country if click else ""),
        "player_key": f"player:{brand_id or 0}:{row.player_id}"[:200] if row.player_id else "",
    }


def _event(row: HistoricConversion, a: dict, event: PostbackEvent) -> PostbackEvent:
    event.source = None
    event.kind = (
        PostbackEvent.Kind.INSTALL
        if row.type == ConversionType.INSTALL
        else PostbackEvent.Kind.EVENT
    )
    event.event_name = row.type
    event.conversion_type = row.type
    event.occurred_at = row.occurred_at
    event.click_id = row.click_id
    event.platform = a["platform"]
    event.revenue = row.revenue
    event.currency = row.currency if row.revenue is not None else ""
    event.country = a["country"]
    event.player_id = row.player_id
    event.txid = row.external_id[:128]
    event.status = row.status
    return event


def _conversion(row: HistoricConversion, a: dict, conversion: Conversion) -> Conversion:
    click = a["click"]
    conversion.type = row.type
    conversion.platform = a["platform"]
    conversion.channel = Channel.WEB if a["platform"] == Platform.WEB else Channel.MOBILE
    conversion.brand_id = a["brand_id"]
    conversion.campaign_id = a["campaign_id"]
    conversion.affiliate_id = a["affiliate_id"]
    conversion.click = click
    conversion.method = Method.MANUAL
    conversion.touch_type = "click" if click else ""
    conversion.occurred_at = row.occurred_at
    conversion.ctit_seconds = (
        int((row.occurred_at - click.created_at).total_seconds())
        if click and row.type == ConversionType.INSTALL
        else None
    )
    conversion.revenue = row.revenue
    conversion.currency = row.currency if row.revenue is not None else ""
    conversion.country = a["country"]
    conversion.player_key = a["player_key"]
    conversion.status = row.status
    conversion.reason = Reason.OK
    conversion.detail = f"imported: {row.external_id}"[:500]
    conversion.claim_key = row.dedup_key[:255]
    conversion.is_winner = True
    conversion.ledger_synced = True  # history was paid on the old platform: no ledger entries
    return conversion


def _update(row: HistoricConversion, a: dict) -> tuple[Conversion, str, str] | None:
    conversion = row.existing
    old = f"{conversion.affiliate_id}/{conversion.status}"
    event = _event(row, a, conversion.event)
    event.save()
    Postback.objects.filter(pk=event.postback_id).update(
        body=json.dumps(row.raw, ensure_ascii=False),
        reason=f"imported from conversions.csv line {row.line}",
    )
    _conversion(row, a, conversion).save()
    new = f"{conversion.affiliate_id}/{conversion.status}"
    return (conversion, old, new) if old != new else None
