"""The operator's daily player activity in: check every row, then write all of them or none.

A row is one player's activity on one day and product. It is idempotent per (brand, player, day,
product): the same row again changes nothing; the same key with other amounts is a revision that
replaces the stored row, keeping the old amounts in an audit row. Commission follows when months
are closed (``payouts.ledger.ngr_close``): a revision of a month already closed becomes an
adjustment in the next one.
"""

import csv
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from affiliates.models import Brand

from . import cohort_facts
from .models import ACTIVITY_AMOUNTS, BrandApiToken, PlayerActivity, PlayerActivityRevision

MAX_ROWS = 10_000
PLACES = Decimal("0.0001")
LIMIT = Decimal(10) ** 14
PRODUCT = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
CURRENCY = re.compile(r"^[A-Z]{3}\Z")
FIELDS_IN_ORDER = ("brand", "player_id", "date", "product", "currency", *ACTIVITY_AMOUNTS)
FIELDS = set(FIELDS_IN_ORDER)
# Rows looked up per query: well under SQLite's bound-parameter limit.
CHUNK = 500


@dataclass(frozen=True)
class RowError:
    index: int  # 0-based position in the request (CSV: the data row, header not counted)
    field: str
    reason: str

    def as_dict(self) -> dict:
        return {"index": self.index, "field": self.field, "reason": self.reason}


@dataclass
class ActivityRow:
    brand_id: int
    player_id: str
    day: date
    product: str
    currency: str
    amounts: dict[str, Decimal | None]

    @property
    def key(self) -> tuple[int, str, date, str]:
        return (self.brand_id, self.player_id, self.day, self.product)


@dataclass
class Checked:
    rows: list[ActivityRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


@dataclass
class Outcome:
    created: int = 0
    revised: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict:
        return {"created": self.created, "revised": self.revised, "unchanged": self.unchanged}


def _amount(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError('a decimal string, e.g. "12.50"')
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError('a decimal string, e.g. "12.50"') from None
    if not amount.is_finite():
        raise ValueError("a finite amount")
    if amount != amount.quantize(PLACES, rounding="ROUND_DOWN"):
        raise ValueError("at most 4 decimal places")
    if abs(amount) >= LIMIT:
        raise ValueError("too large")
    return amount.quantize(PLACES)


def _text(raw: Mapping, name: str) -> str:
    value = raw.get(name)
    if value is None or value == "":
        raise ValueError("required")
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise ValueError("a string")
    return str(value).strip()


def _check_row(raw: object, default_brand: int | None) -> tuple[ActivityRow | None, list]:
    if not isinstance(raw, Mapping):
        return None, [("", "a row is an object of fields")]
    problems: list[tuple[str, str]] = []
    for name in sorted(set(raw) - FIELDS):
        problems.append((str(name)[:64], "unknown field"))
    values: dict[str, object] = {}

    def read(name: str, parse) -> None:
        try:
            values[name] = parse()
        except ValueError as exc:
            problems.append((name, str(exc)))

    def brand() -> int:
        value = raw.get("brand")
        if value in (None, ""):
            if default_brand is None:
                raise ValueError("required (the brand's id)")
            return default_brand
        try:
            brand_id = int(str(value))
        except ValueError:
            raise ValueError("a brand id") from None
        if default_brand is not None and brand_id != default_brand:
            raise ValueError(f"this sender sends for brand {default_brand} only")
        return brand_id

    def player() -> str:
        text = _text(raw, "player_id")
        if len(text) > 100 or not text.isprintable():
            raise ValueError("up to 100 printable characters")
        return text

    def day() -> date:
        try:
            found = date.fromisoformat(_text(raw, "date"))
        except ValueError as exc:
            raise ValueError(
                "a date, YYYY-MM-DD" if str(exc) != "required" else "required"
            ) from None
        if not 2000 <= found.year <= 2100:
            raise ValueError("a date between 2000 and 2100")
        return found

    def product() -> str:
        text = _text(raw, "product").lower()
        if not PRODUCT.match(text):
            raise ValueError("a product name: letters, digits, - and _, up to 32 (e.g. casino)")
        return text

    def currency() -> str:
        text = _text(raw, "currency")
        if not CURRENCY.match(text):
            raise ValueError("an ISO 4217 code in capitals, e.g. EUR")
        return text

    read("brand", brand)
    read("player_id", player)
    read("date", day)
    read("product", product)
    read("currency", currency)
    amounts: dict[str, Decimal | None] = {}
    for name in ACTIVITY_AMOUNTS:
        value = raw.get(name)
        if value is None or value == "":
            amounts[name] = None
            continue
        try:
            amounts[name] = _amount(value)
        except ValueError as exc:
            amounts[name] = None
            problems.append((name, str(exc)))
    bets, wins, ggr = amounts["bets"], amounts["wins"], amounts["ggr"]
    if not {"bets", "wins"} & {p[0] for p in problems}:
        if (bets is None) != (wins is None):
            problems.append(("wins" if wins is None else "bets", "bets and wins go together"))
        elif bets is None and ggr is None and "ggr" not in {p[0] for p in problems}:
            problems.append(("ggr", "required: ggr, or bets and wins"))
        elif bets is not None and ggr is not None and ggr != bets - wins:
            problems.append(("ggr", f"is not bets - wins ({bets - wins})"))
        elif bets is not None and ggr is None:
            amounts["ggr"] = bets - wins
    if problems:
        return None, problems
    for name in ("bonuses", "chargebacks", "taxes", "fees", "deposits", "withdrawals"):
        if amounts[name] is None:
            amounts[name] = Decimal(0).quantize(PLACES)
    return (
        ActivityRow(
            brand_id=values["brand"],
            player_id=values["player_id"],
            day=values["date"],
            product=values["product"],
            currency=values["currency"],
            amounts=amounts,
        ),
        [],
    )


def activity_check(
    raw_rows: Iterable[object], *, brand_id: int | None = None, first_index: int = 0
) -> Checked:
    """Every row checked: the good ones parsed, each bad one named by index, field and reason.

    ``brand_id``: the brand every row belongs to (a brand's token, a CSV for one brand); rows
    may then leave ``brand`` out and may not name another.
    """
    checked = Checked()
    seen: dict[tuple, int] = {}
    for index, raw in enumerate(raw_rows, start=first_index):
        row, problems = _check_row(raw, brand_id)
        checked.errors.extend(RowError(index, name, reason) for name, reason in problems)
        if row is None:
            continue
        if row.key in seen:
            checked.errors.append(
                RowError(
                    index, "player_id", f"the same player, date and product as row {seen[row.key]}"
                )
            )
            continue
        seen[row.key] = index
        checked.rows.append(row)
    brands = {row.brand_id for row in checked.rows}
    known = set(Brand.objects.filter(pk__in=brands).values_list("pk", flat=True))
    for index, row in zip(seen.values(), checked.rows, strict=True):
        if row.brand_id not in known:
            checked.errors.append(RowError(index, "brand", f"no brand {row.brand_id}"))
    checked.errors.sort(key=lambda e: (e.index, e.field))
    return checked


def _stored(row: PlayerActivity) -> dict[str, str | None]:
    values = {"currency": row.currency}
    for name in ACTIVITY_AMOUNTS:
        amount = getattr(row, name)
        values[name] = None if amount is None else str(Decimal(amount).quantize(PLACES))
    return values


def _wanted(row: ActivityRow) -> dict[str, str | None]:
    values = {"currency": row.currency}
    for name in ACTIVITY_AMOUNTS:
        amount = row.amounts[name]
        values[name] = None if amount is None else str(amount)
    return values


def _existing(rows: list[ActivityRow]) -> dict[tuple, PlayerActivity]:
    found: dict[tuple, PlayerActivity] = {}
    by_brand: dict[int, list[ActivityRow]] = defaultdict(list)
    for row in rows:
        by_brand[row.brand_id].append(row)
    for brand_id, mine in by_brand.items():
        players = sorted({r.player_id for r in mine})
        first, last = min(r.day for r in mine), max(r.day for r in mine)
        for start in range(0, len(players), CHUNK):
            stored = (
                PlayerActivity.objects.filter(
                    brand_id=brand_id,
                    player_id__in=players[start : start + CHUNK],
                    day__gte=first,
                    day__lte=last,
                )
                .order_by("pk")
                # Two revisions of one row at once: the second waits and compares with the first.
                .select_for_update()
            )
            for activity in stored:
                found[(brand_id, activity.player_id, activity.day, activity.product)] = activity
    return found


def _write(rows: list[ActivityRow], actor: AbstractBaseUser | None, token: BrandApiToken | None):
    outcome = Outcome()
    now = timezone.now()
    existing = _existing(rows)
    new, changed, audits = [], [], []
    for row in rows:
        stored = existing.get(row.key)
        if stored is None:
            new.append(
                PlayerActivity(
                    brand_id=row.brand_id,
                    player_id=row.player_id,
                    day=row.day,
                    product=row.product,
                    currency=row.currency,
                    received_at=now,
                    updated_at=now,
                    **row.amounts,
                )
            )
            continue
        old, wanted = _stored(stored), _wanted(row)
        if old == wanted:
            outcome.unchanged += 1
            continue
        audits.append(
            PlayerActivityRevision(
                activity=stored,
                revision=stored.revision,
                old=old,
                new=wanted,
                actor=actor,
                token=token,
            )
        )
        stored.currency = row.currency
        for name, amount in row.amounts.items():
            setattr(stored, name, amount)
        stored.revision += 1
        stored.updated_at = now
        changed.append(stored)
    PlayerActivity.objects.bulk_create(new, batch_size=1000)
    PlayerActivity.objects.bulk_update(
        changed, ["currency", *ACTIVITY_AMOUNTS, "revision", "updated_at"], batch_size=1000
    )
    PlayerActivityRevision.objects.bulk_create(audits, batch_size=1000)
    cohort_facts.mark_stale((a.brand_id, a.player_id) for a in (*new, *changed))
    outcome.created, outcome.revised = len(new), len(changed)
    return outcome


def activity_store(
    *,
    rows: list[ActivityRow],
    actor: AbstractBaseUser | AnonymousUser | None = None,
    token: BrandApiToken | None = None,
) -> Outcome:
    """Store checked rows in one transaction: new ones added, revised ones replaced (with an
    audit row each), repeats left alone."""
    if actor is not None and not actor.is_authenticated:
        actor = None
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                return _write(rows, actor, token)
        except IntegrityError:
            # Another request added one of these rows first; it is stored now, so a second
            # try finds it and compares.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def activity_ingest(
    *,
    raw_rows: list[object],
    brand_id: int | None = None,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    token: BrandApiToken | None = None,
) -> tuple[Outcome | None, list[RowError]]:
    """Check, then store all rows or none: (what was done, []) or (None, every bad row)."""
    checked = activity_check(raw_rows, brand_id=brand_id)
    if checked.errors:
        return None, checked.errors
    return activity_store(rows=checked.rows, actor=actor, token=token), []


def activity_read_csv(lines: Iterable[str]) -> tuple[list[dict[str, str]], list[str]]:
    """A CSV file's rows as the API's row objects (header row first; empty cells left out),
    and warnings about columns that are not read."""
    reader = csv.DictReader(lines)
    header = [name.strip() for name in reader.fieldnames or []]
    warnings = [f"column {name!r} is not read" for name in header if name not in FIELDS]
    rows = []
    for record in reader:
        rows.append(
            {
                key.strip(): value.strip()
                for key, value in record.items()
                if key is not None and key.strip() in FIELDS and value not in (None, "")
            }
        )
    return rows, warnings
