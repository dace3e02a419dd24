"""Reading the export's CSV files and parsing one cell of each kind; a bad cell raises ``Bad``."""

from __future__ import annotations

import csv
import ipaddress
import re
import socket
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator

from affiliates.importing.report import ImportReport
from affiliates.models import (
    Platform,
)

FILES = ("affiliates", "campaigns", "links", "clicks", "conversions")


SUBS = ("sub1", "sub2", "sub3", "sub4", "sub5")


# Required columns, then optional ones (a file may leave those out of its header).
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "affiliates": (
        ("external_id", "username", "email", "name", "status"),
        ("parent_external_id", "time_zone", "currency", "created_at"),
    ),
    "campaigns": (
        ("external_id", "brand", "name"),
        ("status", "web_url", "ios_url", "android_url", "click_lookback_days"),
    ),
    "links": (
        ("code", "affiliate_external_id", "campaign_external_id"),
        (*SUBS, "legacy_url"),
    ),
    "clicks": (
        ("click_id", "link_code", "created_at"),
        ("ip", "user_agent", "platform", "country", *SUBS, "gaid", "idfa"),
    ),
    "conversions": (
        ("external_id", "type", "occurred_at"),
        (
            "click_id",
            "affiliate_external_id",
            "campaign_external_id",
            "status",
            "revenue",
            "currency",
            "player_id",
            "platform",
            "country",
        ),
    ),
}


CODE_RE = re.compile(r"^[A-Za-z0-9._~-]+$")


CURRENCY_RE = re.compile(r"^[A-Z]{3}$")


COUNTRY_RE = re.compile(r"^[A-Z]{2}$")


BLANK_OR_CONTROL_RE = re.compile(r"[\s\x00-\x1f\x7f]")


PLATFORMS = tuple(Platform.values)


MAX_LOOKBACK_DAYS = 90


FUTURE_SLACK = timedelta(minutes=10)


CHUNK = 500  # keys per IN (...) lookup


url_validator = URLValidator(schemes=["http", "https"])


username_validator = UnicodeUsernameValidator()


def chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
    batch: list = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Bad(ValueError):
    """One field's problem: the column and what is wrong with it."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


def duplicate(column: str, value: str, first: int) -> Bad:
    return Bad(column, f"duplicate {column} {value!r} (first on line {first})")


def text_cell(row: dict, column: str, limit: int, *, required: bool = False) -> str:
    value = row.get(column) or ""
    if required and not value:
        raise Bad(column, "is empty; it is required")
    if len(value) > limit:
        raise Bad(column, f"is {len(value)} characters long; at most {limit}")
    return value


def moment_cell(row: dict, column: str, *, required: bool = True, now: datetime) -> datetime | None:
    value = row.get(column) or ""
    if not value:
        if required:
            raise Bad(column, "is empty; a date and time in ISO 8601 (UTC) is required")
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise Bad(
            column, f"{value!r} is not an ISO 8601 date and time (e.g. 2026-03-01T14:05:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    if moment > now + FUTURE_SLACK:
        raise Bad(column, f"{value} is in the future")
    if moment.year < 2000:
        raise Bad(column, f"{value} is before 2000")
    return moment


def choice_cell(row: dict, column: str, choices: Iterable[str], default: str = "") -> str:
    value = (row.get(column) or default).lower()
    allowed = list(choices)
    if not value:
        raise Bad(column, f"is empty; one of {', '.join(allowed)} is required")
    if value not in allowed:
        shown = repr(row.get(column) or "")
        raise Bad(column, f"{shown} is not one of {', '.join(allowed)}")
    return value


def url_cell(row: dict, column: str) -> str:
    value = row.get(column) or ""
    if not value:
        return ""
    if len(value) > 2000:
        raise Bad(column, f"is {len(value)} characters long; at most 2000")
    try:
        url_validator(value)
    except ValidationError:
        raise Bad(column, f"{value!r} is not a valid http(s) URL") from None
    return value


def ip_value(value: str) -> str:
    """The address as stored: IPv4 as given (checked in C, it is most of them), IPv6 compressed."""
    try:
        socket.inet_pton(socket.AF_INET, value)
    except OSError:
        return str(ipaddress.ip_address(value))  # ValueError when it is not an address
    return value


def country_cell(row: dict, column: str = "country") -> str:
    value = (row.get(column) or "").upper()
    if value and not COUNTRY_RE.match(value):
        raise Bad(column, f"{row.get(column)!r} is not a two-letter country code")
    return value


def currency_cell(row: dict, column: str, default: str = "") -> str:
    value = (row.get(column) or default).upper()
    if value and not CURRENCY_RE.match(value):
        raise Bad(column, f"{row.get(column)!r} is not a three-letter currency code")
    return value


def read_csv(
    path: Path, name: str, report: ImportReport
) -> list[tuple[int, dict[str, str]]] | None:
    """The rows of one file as (line number, {column: stripped value}); None if unreadable."""
    required, optional = COLUMNS[name]
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            header = [h.strip().lower() for h in next(reader, [])]
            if not any(header):
                report.refuse(name, 1, "", "the file is empty: no header row")
                return None
            missing = [c for c in required if c not in header]
            for column in missing:
                report.refuse(name, 1, column, "required column is missing from the header")
            repeated = [c for c, n in Counter(header).items() if n > 1 and c]
            for column in repeated:
                report.refuse(name, 1, column, "column appears twice in the header")
            extra = [c for c in header if c and c not in required and c not in optional]
            if extra:
                report.warnings.append(f"{name}.csv: columns ignored: {', '.join(extra)}")
            if missing or repeated:
                return None
            for values in reader:
                if not any(v.strip() for v in values):
                    continue
                if len(values) > len(header):
                    report.refuse(
                        name,
                        reader.line_num,
                        "",
                        f"{len(values)} fields; the header has {len(header)}",
                    )
                    continue
                rows.append(
                    (
                        reader.line_num,
                        {h: v.strip() for h, v in zip(header, values, strict=False) if h},
                    )
                )
    except UnicodeDecodeError as exc:
        report.refuse(name, 0, "", f"not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None
    except csv.Error as exc:
        report.refuse(name, reader.line_num, "", f"not readable as CSV: {exc}")
        return None
    report.rows[name] = len(rows)
    return rows
