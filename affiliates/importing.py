"""Moving a program in: import another platform's CSV export (affiliates, campaigns, links,
clicks, conversions), all or nothing, idempotent.

``program_import(directory=...)`` reads up to five files (README "Moving a program in"):

1. **Check** every row of every file, with a reason per refused row (file, line, column, what is
   wrong). Natural keys decide what a row would do: an affiliate is its ``username``, a campaign
   its (brand name, campaign name), a link its ``code``, a click its ``click_id``, a conversion
   the inbox row ``Postback(kind="import", dedup_key="import:<external_id>")``. A row that matches
   and says the same is *unchanged*; one that says something else *updates* (clicks never do).
2. If **any** row was refused, or on a dry run, stop: nothing is written.
3. Otherwise **write** everything in one transaction (bulk inserts for the big tables), then
   rebuild the rollups for the days the imported clicks and conversions fall on.

History was paid on the old platform: imported conversions get ``ledger_synced=True`` and no
ledger entries.
"""

from __future__ import annotations

import csv
import ipaddress
import json
import re
import socket
import time
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator, validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from tqdm import tqdm

from affiliates.legacy import is_identifying, is_routed, legacy_key, legacy_path
from affiliates.models import (
    Affiliate,
    AuditEvent,
    Brand,
    Campaign,
    LegacyLink,
    Platform,
    TrackingLink,
)
from affiliates.services import Actor
from attribution.clicks.destination import MACRO_RE, platform_from_user_agent
from attribution.clicks.recording import device_id
from attribution.models import (
    SUB_MAX,
    USER_AGENT_MAX,
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
from attribution.parsing.wire import clean_line
from attribution.rollups import keep

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
KINDS = ("affiliates", "brands", "campaigns", "links", "legacy links", "clicks", "conversions")

CODE_RE = re.compile(r"^[A-Za-z0-9._~-]+$")
CURRENCY_RE = re.compile(r"^[A-Z]{3}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
BLANK_OR_CONTROL_RE = re.compile(r"[\s\x00-\x1f\x7f]")
PLATFORMS = tuple(Platform.values)
MAX_LOOKBACK_DAYS = 90
FUTURE_SLACK = timedelta(minutes=10)
CHUNK = 500  # keys per IN (...) lookup
IMPORT_METHOD = "IMPORT"
WARNINGS_SHOWN = 100

_url_validator = URLValidator(schemes=["http", "https"])
_username_validator = UnicodeUsernameValidator()


# --- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Refusal:
    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line else self.file
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class ImportReport:
    directory: str
    dry_run: bool
    tallies: dict[str, Tally] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rollup_days: tuple[date, date] | None = None
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def total(self) -> Tally:
        total = Tally()
        for tally in self.tallies.values():
            total.created += tally.created
            total.updated += tally.updated
            total.unchanged += tally.unchanged
        return total

    def tally(self, kind: str) -> Tally:
        return self.tallies.setdefault(kind, Tally())

    def refuse(self, file: str, line: int, column: str, message: str) -> None:
        self.refusals.append(Refusal(f"{file}.csv", line, column, message))

    def lines(self) -> list[str]:
        files = ", ".join(f"{name}.csv ({n} rows)" for name, n in self.rows.items())
        out = [f"Import from {self.directory}: {files or 'no files read'}"]
        if self.tallies:
            out.append("Done:" if self.applied else "What the files would do:")
        for kind in KINDS:
            if kind in self.tallies:
                out.append(f"  {kind:<13} {self.tallies[kind]}")
        if self.tallies:
            out.append(f"  {'total':<13} {self.total}")
        if self.refusals:
            out.append(f"{len(self.refusals)} row(s) refused; nothing was imported:")
            out.extend(f"  {refusal}" for refusal in self.refusals)
        if self.warnings:
            out.append(f"{len(self.warnings)} warning(s):")
            out.extend(f"  {w}" for w in self.warnings[:WARNINGS_SHOWN])
            if len(self.warnings) > WARNINGS_SHOWN:
                out.append(f"  ... and {len(self.warnings) - WARNINGS_SHOWN} more")
        if self.applied and self.rollup_days:
            out.append(f"Rollups rebuilt for {self.rollup_days[0]}..{self.rollup_days[1]}.")
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        if self.dry_run and not self.refusals:
            out.append(f"Dry run: nothing was changed ({timing}).")
        elif self.applied and not (self.total.created or self.total.updated):
            out.append(f"Nothing to change: the files match what is here ({timing}).")
        elif self.applied:
            out.append(f"Imported in one transaction ({timing}).")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


# --- reading and small parsers ------------------------------------------------------------------


def _chunks(items: Iterable, size: int = CHUNK) -> Iterator[list]:
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


def _duplicate(column: str, value: str, first: int) -> Bad:
    return Bad(column, f"duplicate {column} {value!r} (first on line {first})")


def _text(row: dict, column: str, limit: int, *, required: bool = False) -> str:
    value = row.get(column) or ""
    if required and not value:
        raise Bad(column, "is empty; it is required")
    if len(value) > limit:
        raise Bad(column, f"is {len(value)} characters long; at most {limit}")
    return value


def _moment(row: dict, column: str, *, required: bool = True, now: datetime) -> datetime | None:
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


def _choice(row: dict, column: str, choices: Iterable[str], default: str = "") -> str:
    value = (row.get(column) or default).lower()
    allowed = list(choices)
    if not value:
        raise Bad(column, f"is empty; one of {', '.join(allowed)} is required")
    if value not in allowed:
        shown = repr(row.get(column) or "")
        raise Bad(column, f"{shown} is not one of {', '.join(allowed)}")
    return value


def _url(row: dict, column: str) -> str:
    value = row.get(column) or ""
    if not value:
        return ""
    if len(value) > 2000:
        raise Bad(column, f"is {len(value)} characters long; at most 2000")
    try:
        _url_validator(value)
    except ValidationError:
        raise Bad(column, f"{value!r} is not a valid http(s) URL") from None
    return value


def _ip(value: str) -> str:
    """The address as stored: IPv4 as given (checked in C, it is most of them), IPv6 compressed."""
    try:
        socket.inet_pton(socket.AF_INET, value)
    except OSError:
        return str(ipaddress.ip_address(value))  # ValueError when it is not an address
    return value


def _country(row: dict, column: str = "country") -> str:
    value = (row.get(column) or "").upper()
    if value and not COUNTRY_RE.match(value):
        raise Bad(column, f"{row.get(column)!r} is not a two-letter country code")
    return value


def _currency(row: dict, column: str, default: str = "") -> str:
    value = (row.get(column) or default).upper()
    if value and not CURRENCY_RE.match(value):
        raise Bad(column, f"{row.get(column)!r} is not a three-letter currency code")
    return value


def _read(path: Path, name: str, report: ImportReport) -> list[tuple[int, dict[str, str]]] | None:
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


# --- the plan: what each row would do -----------------------------------------------------------


@dataclass
class AffiliateRow:
    line: int
    external_id: str
    username: str
    email: str
    name: str
    status: str
    parent_external_id: str
    time_zone: str
    currency: str
    created_at: datetime | None
    existing: Affiliate | None = None
    action: str = "created"


@dataclass
class CampaignRow:
    line: int
    external_id: str
    brand: str
    name: str
    fields: dict[str, Any]
    existing: Campaign | None = None
    action: str = "created"

    @property
    def key(self) -> tuple[str, str]:
        return (self.brand, self.name)


@dataclass
class LinkRow:
    line: int
    code: str
    affiliate_external_id: str
    campaign_external_id: str
    subs: tuple[str, ...]
    legacy: tuple[str, str] | None
    existing: TrackingLink | None = None
    action: str = "created"
    legacy_action: str = ""


@dataclass
class ConversionRow:
    line: int
    external_id: str
    raw: dict[str, str]
    click_id: str
    affiliate_external_id: str
    campaign_external_id: str
    type: str
    status: str
    occurred_at: datetime
    revenue: Decimal | None
    currency: str
    player_id: str
    platform: str
    country: str
    existing: Conversion | None = None
    action: str = "created"

    @property
    def dedup_key(self) -> str:
        return f"import:{self.external_id}"


# A click to insert: everything but the link's ids, which are known once links are written.
# (click_id, link_code, created_at, ip, user_agent, platform, country, *subs, gaid, idfa)
ClickValues = tuple


@dataclass
class Plan:
    affiliates: dict[str, AffiliateRow] = field(default_factory=dict)
    brands: dict[str, Brand | None] = field(default_factory=dict)
    campaigns: dict[str, CampaignRow] = field(default_factory=dict)
    links: dict[str, LinkRow] = field(default_factory=dict)
    clicks: list[ClickValues] = field(default_factory=list)
    # click_id -> link code, for every click of the file (new or already here)
    click_links: dict[str, str] = field(default_factory=dict)
    # link code -> (username, (brand, campaign name)) for links already here and not in the file
    known_links: dict[str, tuple[str, tuple[str, str]]] = field(default_factory=dict)
    # click_id -> (username, (brand, campaign)) for clicks conversions name that are already here
    known_clicks: dict[str, tuple[str, tuple[str, str]]] = field(default_factory=dict)
    conversions: dict[str, ConversionRow] = field(default_factory=dict)
    moments: list[datetime] = field(default_factory=list)  # what the rollups must cover


class Checker:
    """Reads the files, refuses what is wrong, and works out what each good row would do."""

    def __init__(self, directory: Path, report: ImportReport, progress: bool | None) -> None:
        self.directory = directory
        self.report = report
        self.progress = progress
        self.plan = Plan()
        self.now = timezone.now()
        self.present: set[str] = set()

    def bar(self, rows: list, name: str) -> Iterable:
        disable = None if self.progress is None else not self.progress
        return tqdm(rows, desc=f"checking {name}.csv", unit="row", disable=disable, leave=False)

    def refuse(self, name: str, line: int, column: str, message: str) -> None:
        self.report.refuse(name, line, column, message)

    def run(self) -> Plan:
        if not self.directory.is_dir():
            self.report.refusals.append(Refusal(str(self.directory), 0, "", "is not a folder"))
            return self.plan
        files = {name: self.directory / f"{name}.csv" for name in FILES}
        self.present = {name for name, path in files.items() if path.is_file()}
        others = sorted(
            p.name for p in self.directory.glob("*.csv") if p.stem not in FILES and p.is_file()
        )
        if others:
            self.report.warnings.append(f"files ignored: {', '.join(others)}")
        if not self.present:
            self.report.refusals.append(
                Refusal(
                    str(self.directory),
                    0,
                    "",
                    "no import files: expected one or more of "
                    + ", ".join(f"{n}.csv" for n in FILES),
                )
            )
            return self.plan
        for name in FILES:
            if name in self.present:
                rows = _read(files[name], name, self.report)
                if rows is not None:
                    getattr(self, f"check_{name}")(rows)
        return self.plan

    # affiliates -------------------------------------------------------------------------------

    def check_affiliates(self, rows: list[tuple[int, dict]]) -> None:
        name = "affiliates"
        zones = zoneinfo.available_timezones()
        default_currency = Affiliate._meta.get_field("currency").default
        usernames: dict[str, int] = {}
        for line, row in self.bar(rows, name):
            try:
                external_id = _text(row, "external_id", 200, required=True)
                if external_id in self.plan.affiliates:
                    first = self.plan.affiliates[external_id].line
                    raise _duplicate("external_id", external_id, first)
                username = _text(row, "username", 150, required=True)
                try:
                    _username_validator(username)
                except ValidationError:
                    raise Bad(
                        "username",
                        f"{username!r} may hold only letters, digits and @ . + - _",
                    ) from None
                if username in usernames:
                    raise _duplicate("username", username, usernames[username])
                email = _text(row, "email", 254, required=True)
                try:
                    validate_email(email)
                except ValidationError:
                    raise Bad("email", f"{email!r} is not an email address") from None
                display = _text(row, "name", 200, required=True)
                status = _choice(row, "status", Affiliate.Status.values)
                time_zone = row.get("time_zone") or "UTC"
                if time_zone not in zones:
                    raise Bad("time_zone", f"{time_zone!r} is not a known time zone")
                currency = _currency(row, "currency", default_currency)
                parent = row.get("parent_external_id") or ""
                if parent == external_id:
                    raise Bad("parent_external_id", "an affiliate cannot be its own parent")
                created_at = _moment(row, "created_at", required=False, now=self.now)
            except Bad as bad:
                self.refuse(name, line, bad.column, bad.message)
                # Still known, so that rows naming it are not refused for an unknown id too.
                external_id = row.get("external_id") or ""
                if external_id and external_id not in self.plan.affiliates:
                    self.plan.affiliates[external_id] = AffiliateRow(
                        line, external_id, row.get("username") or "", "", "", "", "", "", "", None
                    )
                    self.plan.affiliates[external_id].action = "refused"
                continue
            usernames[username] = line
            self.plan.affiliates[external_id] = AffiliateRow(
                line,
                external_id,
                username,
                email,
                display,
                status,
                parent,
                time_zone,
                currency,
                created_at,
            )
        rows_ok = [r for r in self.plan.affiliates.values() if r.action != "refused"]
        self._affiliate_parents(rows_ok)
        self._affiliates_existing(rows_ok)

    def _affiliate_parents(self, rows: list[AffiliateRow]) -> None:
        known = self.plan.affiliates
        for row in rows:
            if not row.parent_external_id:
                continue
            if row.parent_external_id not in known:
                self.refuse(
                    "affiliates",
                    row.line,
                    "parent_external_id",
                    f"unknown parent {row.parent_external_id!r}: no affiliate with that "
                    "external_id in affiliates.csv",
                )
                row.action = "refused"
                continue
            chain, current = [row.external_id], known[row.parent_external_id]
            while current is not None:
                chain.append(current.external_id)
                if current.external_id == row.external_id:
                    self.refuse(
                        "affiliates",
                        row.line,
                        "parent_external_id",
                        f"the parent chain loops: {' -> '.join(chain)}",
                    )
                    row.action = "refused"
                    break
                if current.external_id in chain[:-1]:
                    break  # a loop above this row: refused on its own rows
                current = known.get(current.parent_external_id)

    def _affiliates_existing(self, rows: list[AffiliateRow]) -> None:
        by_username = {r.username: r for r in rows}
        users = get_user_model().objects.select_related("affiliate__parent__user")
        for batch in _chunks(by_username):
            for user in users.filter(username__in=batch):
                row = by_username[user.username]
                affiliate = getattr(user, "affiliate", None)
                if affiliate is None:
                    self.refuse(
                        "affiliates",
                        row.line,
                        "username",
                        f"{user.username!r} is a user here who is not an affiliate (a manager?)",
                    )
                    row.action = "refused"
                    continue
                row.existing = affiliate
        emails = Counter(r.email.lower() for r in rows)
        for email, n in emails.items():
            if n > 1:
                self.report.warnings.append(
                    f"affiliates.csv: {n} affiliates share the email {email}"
                )
        for row in rows:
            if row.existing is None or row.action == "refused":
                continue
            current = row.existing
            parent = self.plan.affiliates.get(row.parent_external_id)
            wanted_parent = parent.username if parent else ""
            have_parent = current.parent.user.username if current.parent_id else ""
            same = (
                current.name == row.name
                and current.status == row.status
                and current.time_zone == row.time_zone
                and current.currency == row.currency
                and current.user.email == row.email
                and have_parent == wanted_parent
            )
            row.action = "unchanged" if same else "updated"

    def _affiliate(self, name: str, line: int, column: str, external_id: str) -> str | None:
        """The username of affiliates.csv's ``external_id``, or None (refused)."""
        if "affiliates" not in self.present:
            self.refuse(name, line, column, "names an affiliate, but there is no affiliates.csv")
            return None
        row = self.plan.affiliates.get(external_id)
        if row is None:
            self.refuse(
                name,
                line,
                column,
                f"unknown affiliate {external_id!r}: not an external_id in affiliates.csv",
            )
            return None
        return row.username

    def _campaign(self, name: str, line: int, column: str, external_id: str):
        """The (brand, name) of campaigns.csv's ``external_id``, or None (refused)."""
        if "campaigns" not in self.present:
            self.refuse(name, line, column, "names a campaign, but there is no campaigns.csv")
            return None
        row = self.plan.campaigns.get(external_id)
        if row is None:
            self.refuse(
                name,
                line,
                column,
                f"unknown campaign {external_id!r}: not an external_id in campaigns.csv",
            )
            return None
        return row.key

    # campaigns --------------------------------------------------------------------------------

    def check_campaigns(self, rows: list[tuple[int, dict]]) -> None:
        name = "campaigns"
        keys: dict[tuple[str, str], int] = {}
        good: list[CampaignRow] = []
        for line, row in self.bar(rows, name):
            try:
                external_id = _text(row, "external_id", 200, required=True)
                if external_id in self.plan.campaigns:
                    first = self.plan.campaigns[external_id].line
                    raise _duplicate("external_id", external_id, first)
                brand = _text(row, "brand", 200, required=True)
                title = _text(row, "name", 200, required=True)
                if (brand, title) in keys:
                    raise Bad(
                        "name",
                        f"duplicate campaign {title!r} of brand {brand!r} "
                        f"(line {keys[(brand, title)]})",
                    )
                status = _choice(row, "status", Campaign.Status.values, "active")
                urls = {c: _url(row, c) for c in ("web_url", "ios_url", "android_url")}
                if not any(urls.values()):
                    raise Bad(
                        "web_url", "a campaign needs at least one of web_url, ios_url, android_url"
                    )
                lookback = row.get("click_lookback_days") or "7"
                if not lookback.isdigit() or not 1 <= int(lookback) <= MAX_LOOKBACK_DAYS:
                    raise Bad(
                        "click_lookback_days",
                        f"{lookback!r} is not a whole number of days from 1 to {MAX_LOOKBACK_DAYS}",
                    )
            except Bad as bad:
                self.refuse(name, line, bad.column, bad.message)
                external_id = row.get("external_id") or ""
                if external_id and external_id not in self.plan.campaigns:
                    refused = CampaignRow(line, external_id, "", "", {}, action="refused")
                    self.plan.campaigns[external_id] = refused
                continue
            for column, url in urls.items():
                unknown = {m for m in re.findall(r"\{[^{}]*\}", url) if not MACRO_RE.fullmatch(m)}
                if unknown:
                    self.report.warnings.append(
                        f"campaigns.csv line {line}, column {column}: macros left as they are "
                        f"(ours are {{click_id}}, {{affiliate_id}}, {{campaign_id}}, "
                        f"{{sub1}}..{{sub5}}): {', '.join(sorted(unknown))}"
                    )
            keys[(brand, title)] = line
            fields = {**urls, "status": status, "click_lookback_days": int(lookback)}
            campaign = CampaignRow(line, external_id, brand, title, fields)
            self.plan.campaigns[external_id] = campaign
            good.append(campaign)
        brands = {r.brand for r in good}
        self.plan.brands = dict.fromkeys(brands)
        for brand in Brand.objects.filter(name__in=brands):
            self.plan.brands[brand.name] = brand
        existing: dict[tuple[str, str], list[Campaign]] = defaultdict(list)
        for campaign in Campaign.objects.select_related("brand").filter(brand__name__in=brands):
            existing[(campaign.brand.name, campaign.name)].append(campaign)
        for row in good:
            found = existing.get(row.key, [])
            if len(found) > 1:
                self.refuse(
                    name,
                    row.line,
                    "name",
                    f"{len(found)} campaigns here are named {row.name!r} in brand {row.brand!r}: "
                    "rename all but one first",
                )
                continue
            if found:
                row.existing = found[0]
                same = all(getattr(found[0], k) == v for k, v in row.fields.items())
                row.action = "unchanged" if same else "updated"

    # links ------------------------------------------------------------------------------------

    def check_links(self, rows: list[tuple[int, dict]]) -> None:
        name = "links"
        legacy_keys: dict[tuple[str, str], int] = {}
        unrouted: Counter[str] = Counter()
        routed: dict[str, bool] = {}
        good: list[LinkRow] = []
        for line, row in self.bar(rows, name):
            try:
                code = _text(row, "code", 64, required=True)
                if not CODE_RE.match(code):
                    raise Bad(
                        "code",
                        f"{code!r} may hold only letters, digits and . _ ~ - "
                        "(it goes in /c/<code>)",
                    )
                if code in self.plan.links:
                    raise _duplicate("code", code, self.plan.links[code].line)
                subs = tuple(_text(row, s, SUB_MAX) for s in SUBS)
                legacy = self._legacy(row.get("legacy_url") or "")
                if legacy and legacy in legacy_keys:
                    raise Bad(
                        "legacy_url",
                        f"the same old link as line {legacy_keys[legacy]} "
                        f"({legacy[0]}?{legacy[1]})",
                    )
            except Bad as bad:
                self.refuse(name, line, bad.column, bad.message)
                code = row.get("code") or ""
                if code and code not in self.plan.links:
                    self.plan.links[code] = LinkRow(line, code, "", "", (), None, action="refused")
                continue
            affiliate = self._affiliate(
                name, line, "affiliate_external_id", row.get("affiliate_external_id") or ""
            )
            campaign = self._campaign(
                name, line, "campaign_external_id", row.get("campaign_external_id") or ""
            )
            link = LinkRow(
                line,
                code,
                row.get("affiliate_external_id") or "",
                row.get("campaign_external_id") or "",
                subs,
                legacy,
            )
            self.plan.links[code] = link
            if legacy:
                legacy_keys[legacy] = line
                if legacy[0] not in routed:
                    routed[legacy[0]] = is_routed(legacy[0])
                if not routed[legacy[0]]:
                    unrouted[legacy[0]] += 1
            if affiliate and campaign:
                good.append(link)
            else:
                link.action = "refused"
        for path, n in sorted(unrouted.items()):
            self.report.warnings.append(
                f"links.csv: {n} legacy link(s) on path {path} that does not reach the legacy "
                "redirect: they are stored, but answer only once that path is routed "
                "(affiliates/urls.py); /c/<code> works for them now"
            )
        self._links_existing(good)

    def _legacy(self, url: str) -> tuple[str, str] | None:
        if not url:
            return None
        if len(url) > 2000:
            raise Bad("legacy_url", f"is {len(url)} characters long; at most 2000")
        try:
            _url_validator(url)
        except ValidationError:
            raise Bad("legacy_url", f"{url!r} is not a valid http(s) URL") from None
        parts = urlsplit(url)
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        names = Counter(k for k, _ in pairs if is_identifying(k))
        if not names:
            raise Bad(
                "legacy_url",
                f"{url!r} has no identifying parameters (only sub ids and click ids): it "
                "cannot be told apart from other links",
            )
        twice = sorted(k for k, n in names.items() if n > 1)
        if twice:
            raise Bad("legacy_url", f"parameter(s) given twice: {', '.join(twice)}")
        path, key = legacy_path(parts.path), legacy_key(pairs)
        if len(path) > 200:
            raise Bad("legacy_url", "the path is longer than 200 characters")
        if len(key) > 300:
            raise Bad("legacy_url", "the identifying parameters are longer than 300 characters")
        return path, key

    def _links_existing(self, rows: list[LinkRow]) -> None:
        by_code = {r.code: r for r in rows}
        links = TrackingLink.objects.select_related("affiliate__user", "campaign__brand")
        for batch in _chunks(by_code):
            for link in links.filter(code__in=batch):
                by_code[link.code].existing = link
        by_legacy = {r.legacy: r for r in rows if r.legacy}
        found: dict[tuple[str, str], LegacyLink] = {}
        by_path: dict[str, list[str]] = defaultdict(list)
        for path, key in by_legacy:
            by_path[path].append(key)
        for path, keys in by_path.items():
            for batch in _chunks(keys):
                legacy = LegacyLink.objects.select_related("link").filter(path=path, key__in=batch)
                for entry in legacy:
                    found[(entry.path, entry.key)] = entry
        for row in rows:
            username = self.plan.affiliates[row.affiliate_external_id].username
            campaign = self.plan.campaigns[row.campaign_external_id].key
            current = row.existing
            if current is not None:
                have = (
                    current.affiliate.user.username,
                    (current.campaign.brand.name, current.campaign.name),
                )
                if have != (username, campaign):
                    self.refuse(
                        "links",
                        row.line,
                        "code",
                        f"code {row.code!r} is already link #{current.pk} of affiliate "
                        f"{have[0]!r} on campaign {have[1][1]!r} ({have[1][0]})",
                    )
                    row.action = "refused"
                    continue
                same = tuple(getattr(current, s) for s in SUBS) == row.subs
                row.action = "unchanged" if same else "updated"
            if row.legacy:
                entry = found.get(row.legacy)
                if entry is None:
                    row.legacy_action = "created"
                elif entry.link.code == row.code:
                    row.legacy_action = "unchanged"
                else:
                    self.refuse(
                        "links",
                        row.line,
                        "legacy_url",
                        f"this old link already leads to link {entry.link.code!r}",
                    )
                    row.action = "refused"

    def _link_owner(self, code: str) -> tuple[str, tuple[str, str]] | None:
        row = self.plan.links.get(code)
        if row is not None:
            if row.action == "refused" or row.affiliate_external_id not in self.plan.affiliates:
                return None
            campaign = self.plan.campaigns.get(row.campaign_external_id)
            if campaign is None:
                return None
            return self.plan.affiliates[row.affiliate_external_id].username, campaign.key
        return self.plan.known_links.get(code)

    # clicks -----------------------------------------------------------------------------------

    def check_clicks(self, rows: list[tuple[int, dict]]) -> None:
        name = "clicks"
        seen: dict[str, int] = {}
        parsed: list[tuple[int, ClickValues]] = []
        dropped_devices = 0
        for line, row in self.bar(rows, name):
            try:
                click_id = row.get("click_id") or ""
                if not click_id:
                    raise Bad("click_id", "is empty; it is required")
                if len(click_id) > 64:
                    raise Bad("click_id", f"is {len(click_id)} characters long; at most 64")
                if BLANK_OR_CONTROL_RE.search(click_id):
                    raise Bad("click_id", f"{click_id!r} holds spaces or control characters")
                if click_id in seen:
                    raise _duplicate("click_id", click_id, seen[click_id])
                code = _text(row, "link_code", 64, required=True)
                created_at = _moment(row, "created_at", now=self.now)
                ip = row.get("ip") or ""
                if ip:
                    try:
                        ip = _ip(ip)
                    except ValueError:
                        raise Bad("ip", f"{ip!r} is not an IP address") from None
                user_agent = clean_line(row.get("user_agent") or "", USER_AGENT_MAX)
                platform = (
                    _choice(row, "platform", PLATFORMS)
                    if row.get("platform")
                    else platform_from_user_agent(user_agent)
                )
                country = _country(row)
            except Bad as bad:
                self.refuse(name, line, bad.column, bad.message)
                continue
            seen[click_id] = line
            subs = tuple(clean_line(row.get(s) or "", SUB_MAX) for s in SUBS)
            gaid = device_id(row["gaid"]) if row.get("gaid") else ""
            idfa = device_id(row["idfa"]).upper() if row.get("idfa") else ""
            dropped_devices += (bool(row.get("gaid")) and not gaid) + (
                bool(row.get("idfa")) and not idfa
            )
            values = (click_id, code, created_at, ip or None, user_agent, platform, country)
            parsed.append((line, (*values, *subs, gaid, idfa)))
        if dropped_devices:
            self.report.warnings.append(
                f"clicks.csv: {dropped_devices} advertising id(s) (gaid/idfa) were not valid or "
                "all zeros and are not stored, as /c/ does"
            )
        unknown = {v[1] for _, v in parsed if v[1] not in self.plan.links}
        links = TrackingLink.objects.select_related("affiliate__user", "campaign__brand")
        for batch in _chunks(unknown):
            for link in links.filter(code__in=batch):
                self.plan.known_links[link.code] = (
                    link.affiliate.user.username,
                    (link.campaign.brand.name, link.campaign.name),
                )
        existing: dict[str, str] = {}
        for batch in _chunks([v[0] for _, v in parsed]):
            for click_id, code in Click.objects.filter(click_id__in=batch).values_list(
                "click_id", "link__code"
            ):
                existing[click_id] = code
        tally = self.report.tally("clicks")
        for line, values in parsed:
            click_id, code = values[0], values[1]
            if code not in self.plan.links and code not in self.plan.known_links:
                self.refuse(
                    name,
                    line,
                    "link_code",
                    f"unknown link_code {code!r}: not in links.csv and no such link here",
                )
                continue
            if click_id in existing:
                if existing[click_id] != code:
                    self.refuse(
                        name,
                        line,
                        "click_id",
                        f"click_id {click_id!r} is already recorded here, on link "
                        f"{existing[click_id]!r}",
                    )
                    continue
                tally.unchanged += 1
            else:
                self.plan.clicks.append(values)
                self.plan.moments.append(values[2])
                tally.created += 1
            self.plan.click_links[click_id] = code

    # conversions ------------------------------------------------------------------------------

    def check_conversions(self, rows: list[tuple[int, dict]]) -> None:
        name = "conversions"
        good: list[ConversionRow] = []
        for line, row in self.bar(rows, name):
            try:
                external_id = _text(row, "external_id", 200, required=True)
                if external_id in self.plan.conversions:
                    first = self.plan.conversions[external_id].line
                    raise _duplicate("external_id", external_id, first)
                click_id = _text(row, "click_id", 64)
                kind = _choice(row, "type", ConversionType.values)
                status = _choice(row, "status", Conversion.Status.values, "approved")
                occurred_at = _moment(row, "occurred_at", now=self.now)
                revenue = None
                if row.get("revenue"):
                    try:
                        revenue = Decimal(row["revenue"])
                    except InvalidOperation:
                        raise Bad("revenue", f"{row['revenue']!r} is not a number") from None
                    if not revenue.is_finite() or abs(revenue) >= Decimal(10) ** 12:
                        raise Bad("revenue", f"{row['revenue']!r} is out of range")
                    if -revenue.as_tuple().exponent > 6:
                        raise Bad("revenue", f"{row['revenue']!r} has more than 6 decimals")
                currency = _currency(row, "currency")
                if revenue is not None and not currency:
                    raise Bad("currency", "is empty; it is required with a revenue")
                player_id = _text(row, "player_id", 128)
                platform = _choice(row, "platform", PLATFORMS) if row.get("platform") else ""
                country = _country(row)
                if not click_id and not (
                    row.get("affiliate_external_id") and row.get("campaign_external_id")
                ):
                    raise Bad(
                        "affiliate_external_id",
                        "without a click_id, affiliate_external_id and campaign_external_id "
                        "are required",
                    )
            except Bad as bad:
                self.refuse(name, line, bad.column, bad.message)
                continue
            conversion = ConversionRow(
                line,
                external_id,
                row,
                click_id,
                row.get("affiliate_external_id") or "",
                row.get("campaign_external_id") or "",
                kind,
                status,
                occurred_at,
                revenue,
                currency,
                player_id,
                platform,
                country,
            )
            self.plan.conversions[external_id] = conversion
            good.append(conversion)
        self._conversion_clicks(good)
        self._conversions_existing([r for r in good if r.action != "refused"])

    def _conversion_clicks(self, rows: list[ConversionRow]) -> None:
        """Refuse unknown click ids and clicks of another affiliate or campaign than the row's."""
        here = {r.click_id for r in rows if r.click_id and r.click_id not in self.plan.click_links}
        clicks = Click.objects.select_related("affiliate__user", "campaign__brand")
        for batch in _chunks(here):
            for click in clicks.filter(click_id__in=batch):
                self.plan.known_clicks[click.click_id] = (
                    click.affiliate.user.username,
                    (click.campaign.brand.name, click.campaign.name),
                )
        for row in rows:
            affiliate = campaign = None
            if row.affiliate_external_id:
                affiliate = self._affiliate(
                    "conversions", row.line, "affiliate_external_id", row.affiliate_external_id
                )
                if affiliate is None:
                    row.action = "refused"
            if row.campaign_external_id:
                campaign = self._campaign(
                    "conversions", row.line, "campaign_external_id", row.campaign_external_id
                )
                if campaign is None:
                    row.action = "refused"
            if not row.click_id:
                continue
            if row.click_id in self.plan.click_links:
                owner = self._link_owner(self.plan.click_links[row.click_id])
            elif row.click_id in self.plan.known_clicks:
                owner = self.plan.known_clicks[row.click_id]
            else:
                self.refuse(
                    "conversions",
                    row.line,
                    "click_id",
                    f"unknown click_id {row.click_id!r}: not in clicks.csv and no such click here",
                )
                row.action = "refused"
                continue
            if owner is None:
                row.action = "refused"  # its link or click was refused already
                continue
            if affiliate and owner[0] != affiliate:
                self.refuse(
                    "conversions",
                    row.line,
                    "affiliate_external_id",
                    f"click {row.click_id!r} is affiliate {owner[0]!r}'s, not {affiliate!r}'s",
                )
                row.action = "refused"
            elif campaign and owner[1] != campaign:
                self.refuse(
                    "conversions",
                    row.line,
                    "campaign_external_id",
                    f"click {row.click_id!r} is on campaign {owner[1][1]!r}, not {campaign[1]!r}",
                )
                row.action = "refused"

    def _conversions_existing(self, rows: list[ConversionRow]) -> None:
        by_key = {r.dedup_key: r for r in rows}
        conversions = Conversion.objects.select_related(
            "event__postback", "affiliate__user", "campaign__brand", "click"
        )
        for batch in _chunks(by_key):
            for conversion in conversions.filter(
                event__postback__kind=SourceKind.IMPORT,
                event__postback__source__isnull=True,
                event__postback__dedup_key__in=batch,
            ):
                by_key[conversion.event.postback.dedup_key].existing = conversion
        for row in rows:
            current = row.existing
            if current is None:
                continue
            owner = self._owner(row)
            have = (
                current.affiliate.user.username if current.affiliate_id else "",
                (current.campaign.brand.name, current.campaign.name)
                if current.campaign_id
                else None,
                current.click.click_id if current.click_id else "",
            )
            same = (
                have == (owner[0], owner[1], row.click_id)
                and current.type == row.type
                and current.status == row.status
                and current.occurred_at == row.occurred_at
                and current.revenue == row.revenue
                and (current.currency or "") == (row.currency if row.revenue is not None else "")
                and current.event.player_id == row.player_id
                and (not row.platform or current.platform == row.platform)
                and (not row.country or current.country == row.country)
            )
            row.action = "unchanged" if same else "updated"
            if not same:
                self.plan.moments += [current.occurred_at, row.occurred_at]

    def _owner(self, row: ConversionRow) -> tuple[str, tuple[str, str]]:
        """(username, (brand, campaign)) the conversion credits: the row's, else its click's."""
        owner = None
        if row.click_id:
            code = self.plan.click_links.get(row.click_id)
            owner = self._link_owner(code) if code else self.plan.known_clicks.get(row.click_id)
        username = (
            self.plan.affiliates[row.affiliate_external_id].username
            if row.affiliate_external_id
            else owner[0]
        )
        campaign = (
            self.plan.campaigns[row.campaign_external_id].key
            if row.campaign_external_id
            else owner[1]
        )
        return username, campaign

    # the tallies ------------------------------------------------------------------------------

    def count(self) -> None:
        report, plan = self.report, self.plan

        def add(kind: str, actions: Iterable[str]) -> None:
            tally = report.tally(kind)
            for action in actions:
                if action in ("created", "updated", "unchanged"):
                    setattr(tally, action, getattr(tally, action) + 1)

        if "affiliates" in self.present:
            add("affiliates", (r.action for r in plan.affiliates.values()))
        if "campaigns" in self.present:
            add("brands", ("unchanged" if b else "created" for b in plan.brands.values()))
            add("campaigns", (r.action for r in plan.campaigns.values()))
        if "links" in self.present:
            add("links", (r.action for r in plan.links.values()))
            add(
                "legacy links",
                (r.legacy_action for r in plan.links.values() if r.action != "refused"),
            )
        if "conversions" in self.present:
            add("conversions", (r.action for r in plan.conversions.values()))
            for row in plan.conversions.values():
                if row.action == "created":
                    plan.moments.append(row.occurred_at)


# --- writing ------------------------------------------------------------------------------------


class Writer:
    """Writes a checked plan; runs inside the import's transaction."""

    def __init__(self, plan: Plan, report: ImportReport, progress: bool | None, actor: Actor):
        self.plan = plan
        self.report = report
        self.disable = None if progress is None else not progress
        self.actor = actor if actor is not None and actor.is_authenticated else None
        self.now = timezone.now()
        self.affiliate_ids: dict[str, int] = {}  # username -> pk
        self.campaign_ids: dict[tuple[str, str], int] = {}
        self.link_ids: dict[str, tuple[int, int, int]] = {}  # code -> (pk, affiliate, campaign)
        self.audits: list[AuditEvent] = []

    def bar(self, total: int, name: str) -> tqdm:
        return tqdm(total=total, desc=f"writing {name}", unit="row", disable=self.disable)

    def audit(self, obj: Any, field_name: str, old: str, new: str) -> None:
        self.audits.append(
            AuditEvent(
                content_type=ContentType.objects.get_for_model(obj),
                object_id=str(obj.pk),
                field=field_name,
                old=str(old)[:255],
                new=str(new)[:255],
                actor=self.actor,
                note=f"import from {self.report.directory}"[:500],
            )
        )

    def run(self) -> None:
        self.affiliates()
        self.campaigns()
        self.links()
        self.clicks()
        self.conversions()
        AuditEvent.objects.bulk_create(self.audits, batch_size=1000)

    # affiliates -------------------------------------------------------------------------------

    def affiliates(self) -> None:
        rows = [r for r in self.plan.affiliates.values() if r.action != "refused"]
        if not rows:
            return
        user_model = get_user_model()
        with self.bar(len(rows), "affiliates") as bar:
            new = [r for r in rows if r.existing is None]
            user_model.objects.bulk_create(
                [
                    user_model(
                        username=r.username,
                        email=r.email,
                        password=make_password(None),
                        date_joined=r.created_at or self.now,
                    )
                    for r in new
                ],
                batch_size=500,
            )
            user_ids = self._ids(user_model.objects, "username", [r.username for r in new])
            made = Affiliate.objects.bulk_create(
                [
                    Affiliate(
                        user_id=user_ids[r.username],
                        name=r.name,
                        status=r.status,
                        time_zone=r.time_zone,
                        currency=r.currency,
                    )
                    for r in new
                ],
                batch_size=500,
            )
            bar.update(len(new))
            self.affiliate_ids = dict(
                self._pairs(Affiliate.objects, "user__username", [r.username for r in rows])
            )
            dated = []
            for affiliate, row in zip(made, new, strict=True):
                affiliate.pk = self.affiliate_ids[row.username]
                if row.created_at:
                    affiliate.created_at = row.created_at
                    dated.append(affiliate)
                self.audit(affiliate, "status", "", row.status)
            Affiliate.objects.bulk_update(dated, ["created_at"], batch_size=500)
            changed, users = [], []
            for row in rows:
                if row.action != "updated":
                    continue
                affiliate = row.existing
                if affiliate.status != row.status:
                    self.audit(affiliate, "status", affiliate.status, row.status)
                affiliate.name, affiliate.status = row.name, row.status
                affiliate.time_zone, affiliate.currency = row.time_zone, row.currency
                changed.append(affiliate)
                if affiliate.user.email != row.email:
                    affiliate.user.email = row.email
                    users.append(affiliate.user)
                bar.update(1)
            Affiliate.objects.bulk_update(
                changed, ["name", "status", "time_zone", "currency"], batch_size=500
            )
            user_model.objects.bulk_update(users, ["email"], batch_size=500)
            parents = []
            for row in rows:
                parent = self.plan.affiliates.get(row.parent_external_id)
                parent_id = self.affiliate_ids[parent.username] if parent else None
                if row.existing is None and parent_id is None:
                    continue
                if row.existing is not None and row.existing.parent_id == parent_id:
                    continue
                parents.append(Affiliate(pk=self.affiliate_ids[row.username], parent_id=parent_id))
            Affiliate.objects.bulk_update(parents, ["parent"], batch_size=500)
            bar.update(len(rows) - bar.n)

    @staticmethod
    def _pairs(manager: Any, key: str, values: list) -> Iterator[tuple[Any, int]]:
        for batch in _chunks(values):
            yield from manager.filter(**{f"{key}__in": batch}).values_list(key, "pk")

    def _ids(self, manager: Any, key: str, values: list) -> dict[Any, int]:
        return dict(self._pairs(manager, key, values))

    # campaigns --------------------------------------------------------------------------------

    def campaigns(self) -> None:
        rows = [r for r in self.plan.campaigns.values() if r.action != "refused"]
        if not rows:
            return
        brands = {}
        for name, brand in self.plan.brands.items():
            brands[name] = brand or Brand.objects.create(name=name)
        with self.bar(len(rows), "campaigns") as bar:
            for row in rows:
                if row.existing is None:
                    campaign = Campaign.objects.create(
                        brand=brands[row.brand], name=row.name, **row.fields
                    )
                    self.audit(campaign, "status", "", campaign.status)
                else:
                    campaign = row.existing
                    if row.action == "updated":
                        if campaign.status != row.fields["status"]:
                            self.audit(campaign, "status", campaign.status, row.fields["status"])
                        for name, value in row.fields.items():
                            setattr(campaign, name, value)
                        campaign.save(update_fields=list(row.fields))
                self.campaign_ids[row.key] = campaign.pk
                bar.update(1)

    # links ------------------------------------------------------------------------------------

    def links(self) -> None:
        rows = [r for r in self.plan.links.values() if r.action != "refused"]
        with self.bar(len(rows), "links") as bar:
            new, changed = [], []
            for row in rows:
                if row.existing is None:
                    affiliate = self.plan.affiliates[row.affiliate_external_id].username
                    campaign = self.plan.campaigns[row.campaign_external_id].key
                    new.append(
                        TrackingLink(
                            affiliate_id=self.affiliate_ids[affiliate],
                            campaign_id=self.campaign_ids[campaign],
                            code=row.code,
                            **dict(zip(SUBS, row.subs, strict=True)),
                        )
                    )
                elif row.action == "updated":
                    for name, value in zip(SUBS, row.subs, strict=True):
                        setattr(row.existing, name, value)
                    changed.append(row.existing)
            for batch in _chunks(new, 1000):
                TrackingLink.objects.bulk_create(batch)
                bar.update(len(batch))
            TrackingLink.objects.bulk_update(changed, list(SUBS), batch_size=500)
            bar.update(len(changed))
            codes = [r.code for r in rows] + list(self.plan.known_links)
            for batch in _chunks(codes):
                for code, *ids in TrackingLink.objects.filter(code__in=batch).values_list(
                    "code", "pk", "affiliate_id", "campaign_id"
                ):
                    self.link_ids[code] = tuple(ids)
            LegacyLink.objects.bulk_create(
                [
                    LegacyLink(path=r.legacy[0], key=r.legacy[1], link_id=self.link_ids[r.code][0])
                    for r in rows
                    if r.legacy_action == "created"
                ],
                batch_size=1000,
            )
            bar.update(len(rows) - bar.n)

    # clicks -----------------------------------------------------------------------------------

    def clicks(self) -> None:
        """The fastest bulk insert each database has: COPY on PostgreSQL, executemany on SQLite
        (values are already clean and typed: no model instances, no per-field preparation)."""
        if not self.plan.clicks:
            return
        quote = connection.ops.quote_name
        table = quote(Click._meta.db_table)
        columns = ", ".join(quote(Click._meta.get_field(name).column) for name in CLICK_COLUMNS)
        with self.bar(len(self.plan.clicks), "clicks") as bar, connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for batch in _chunks(self._click_values(), 5000):
                        for values in batch:
                            copy.write_row(values)
                        bar.update(len(batch))
                return
            moment = connection.ops.adapt_datetimefield_value
            places = ", ".join(["%s"] * len(CLICK_COLUMNS))
            sql = f"INSERT INTO {table} ({columns}) VALUES ({places})"  # noqa: S608
            for batch in _chunks(self._click_values(), 2000):
                cursor.executemany(sql, [(*v[:4], moment(v[4]), *v[5:]) for v in batch])
                bar.update(len(batch))

    def _click_values(self) -> Iterator[tuple]:
        """Each new click's values in CLICK_COLUMNS order."""
        for click_id, code, created_at, ip, ua, platform, country, *rest in self.plan.clicks:
            link_id, affiliate_id, campaign_id = self.link_ids[code]
            yield (
                click_id,
                link_id,
                affiliate_id,
                campaign_id,
                created_at,
                ip,
                ua,
                platform,
                country,
                *rest,  # sub1..sub5, gaid, idfa
                "",  # referrer: not in the export
            )

    # conversions ------------------------------------------------------------------------------

    def conversions(self) -> None:
        rows = [r for r in self.plan.conversions.values() if r.action in ("created", "updated")]
        if not rows:
            return
        click_ids = {r.click_id for r in rows if r.click_id}
        clicks: dict[str, Click] = {}
        for batch in _chunks(click_ids):
            for click in Click.objects.filter(click_id__in=batch).only(
                "pk", "click_id", "platform", "country", "created_at", "affiliate_id", "campaign_id"
            ):
                clicks[click.click_id] = click
        campaign_brands = dict(Campaign.objects.values_list("pk", "brand_id"))
        with self.bar(len(rows), "conversions") as bar:
            new = [r for r in rows if r.existing is None]
            Postback.objects.bulk_create(
                [
                    Postback(
                        kind=SourceKind.IMPORT,
                        method=IMPORT_METHOD,
                        body=json.dumps(r.raw, ensure_ascii=False),
                        content_type="application/json",
                        received_at=self.now,
                        dedup_key=r.dedup_key,
                        status=Postback.Status.PROCESSED,
                        reason=f"imported from conversions.csv line {r.line}",
                        attempts=1,
                        processed_at=self.now,
                    )
                    for r in new
                ],
                batch_size=500,
            )
            postbacks = dict(
                self._pairs(
                    Postback.objects.filter(kind=SourceKind.IMPORT, source__isnull=True),
                    "dedup_key",
                    [r.dedup_key for r in new],
                )
            )
            resolved = [(r, self._attribution(r, clicks, campaign_brands)) for r in new]
            PostbackEvent.objects.bulk_create(
                [
                    self._event(r, a, PostbackEvent(postback_id=postbacks[r.dedup_key]))
                    for r, a in resolved
                ],
                batch_size=500,
            )
            events = self._ids(PostbackEvent.objects, "postback_id", list(postbacks.values()))
            conversions = [
                self._conversion(r, a, Conversion(event_id=events[postbacks[r.dedup_key]]))
                for r, a in resolved
            ]
            Conversion.objects.bulk_create(conversions, batch_size=500)
            bar.update(len(new))
            winners = self._ids(
                Conversion.objects.filter(is_winner=True),
                "claim_key",
                [c.claim_key for c in conversions],
            )
            identities = []
            for conversion in conversions:
                if (
                    conversion.player_key
                    and conversion.type in IDENTITY_TYPES
                    and conversion.status != Conversion.Status.REJECTED
                ):
                    identities.append(
                        Identity(
                            key=conversion.player_key,
                            conversion_id=winners[conversion.claim_key],
                            occurred_at=conversion.occurred_at,
                        )
                    )
            Identity.objects.bulk_create(identities, batch_size=500, ignore_conflicts=True)
            for row in rows:
                if row.existing is not None:
                    self._update(row, self._attribution(row, clicks, campaign_brands))
                    bar.update(1)

    def _attribution(self, row: ConversionRow, clicks: dict, brands: dict) -> dict[str, Any]:
        click = clicks.get(row.click_id) if row.click_id else None
        affiliate_id = (
            self.affiliate_ids[self.plan.affiliates[row.affiliate_external_id].username]
            if row.affiliate_external_id
            else click.affiliate_id
        )
        campaign_id = (
            self.campaign_ids[self.plan.campaigns[row.campaign_external_id].key]
            if row.campaign_external_id
            else click.campaign_id
        )
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

    @staticmethod
    def _event(row: ConversionRow, a: dict, event: PostbackEvent) -> PostbackEvent:
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

    @staticmethod
    def _conversion(row: ConversionRow, a: dict, conversion: Conversion) -> Conversion:
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

    def _update(self, row: ConversionRow, a: dict) -> None:
        conversion = row.existing
        old = f"{conversion.affiliate_id}/{conversion.status}"
        event = self._event(row, a, conversion.event)
        event.save()
        Postback.objects.filter(pk=event.postback_id).update(
            body=json.dumps(row.raw, ensure_ascii=False),
            reason=f"imported from conversions.csv line {row.line}",
        )
        self._conversion(row, a, conversion).save()
        new = f"{conversion.affiliate_id}/{conversion.status}"
        if old != new:
            self.audit(conversion, "import", old, new)


IDENTITY_TYPES = (ConversionType.INSTALL, ConversionType.REGISTRATION, ConversionType.FTD)
# The order of the values Writer.clicks inserts.
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


# --- the entry point ----------------------------------------------------------------------------


def program_import(
    *,
    directory: str | Path,
    dry_run: bool = False,
    progress: bool | None = False,
    actor: Actor = None,
    label: str = "",
) -> ImportReport:
    """Check, then (unless refused or a dry run) import the CSV files in ``directory``.

    ``progress``: True shows tqdm bars, False hides them, None shows them on a terminal only;
    ``label`` names the files in the report and audit rows (default: the folder).
    Raises nothing for bad input: every problem is a refusal in the report.
    """
    directory = Path(directory)
    report = ImportReport(directory=label or str(directory), dry_run=dry_run)
    started = time.monotonic()
    checker = Checker(directory, report, progress)
    plan = checker.run()
    checker.count()
    report.seconds["check"] = time.monotonic() - started
    if report.refusals or dry_run:
        return report
    started = time.monotonic()
    if not report.total.created and not report.total.updated:
        report.applied = True  # a repeat run: nothing to write, nothing to rebuild
        return report
    try:
        with transaction.atomic():
            Writer(plan, report, progress, actor).run()
            report.seconds["write"] = time.monotonic() - started
            started = time.monotonic()
            _rebuild_rollups(plan, report, progress)
            report.seconds["rollups"] = time.monotonic() - started
    except IntegrityError as exc:
        report.refusals.append(
            Refusal(
                str(directory),
                0,
                "",
                f"a row conflicts with a change made while the import ran ({exc}); run it again",
            )
        )
        return report
    report.applied = True
    return report


def _rebuild_rollups(plan: Plan, report: ImportReport, progress: bool | None) -> None:
    """Recompute the rollups of every day an imported click or conversion falls on.

    A local day lies within a day of its UTC date, so one day either side is rebuilt too.
    """
    if not plan.moments:
        return
    since = min(plan.moments).date() - timedelta(days=1)
    until = max(plan.moments).date() + timedelta(days=1)
    report.rollup_days = (since, until)
    disable = None if progress is None else not progress
    with tqdm(
        total=(until - since).days + 1, desc="rebuilding rollups", unit="day", disable=disable
    ) as bar:
        keep.rebuild(since=since, until=until, progress=bar.update)
