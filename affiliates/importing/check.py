"""Checking every row of every file against the files and the database; writes nothing."""

from __future__ import annotations

import re
import zoneinfo
from collections import Counter, defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from tqdm import tqdm

from affiliates.importing.cells import (
    BLANK_OR_CONTROL_RE,
    CODE_RE,
    FILES,
    MAX_LOOKBACK_DAYS,
    PLATFORMS,
    SUBS,
    Bad,
    choice_cell,
    chunks,
    country_cell,
    currency_cell,
    duplicate,
    ip_value,
    moment_cell,
    read_csv,
    text_cell,
    url_cell,
    url_validator,
    username_validator,
)
from affiliates.importing.report import ImportReport, Refusal
from affiliates.importing.rows import (
    AffiliateRow,
    CampaignRow,
    ClickValues,
    ConversionRow,
    LinkRow,
    Plan,
)
from affiliates.legacy import is_identifying, is_routed, legacy_key, legacy_path
from affiliates.models import (
    Affiliate,
    Brand,
    Campaign,
    LegacyLink,
    TrackingLink,
)
from attribution.clicks.destination import MACRO_RE, platform_from_user_agent
from attribution.clicks.recording import device_id
from attribution.models import (
    SUB_MAX,
    USER_AGENT_MAX,
    Click,
    Conversion,
    ConversionType,
    SourceKind,
)
from attribution.parsing.wire import clean_line


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
                rows = read_csv(files[name], name, self.report)
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
                external_id = text_cell(row, "external_id", 200, required=True)
                if external_id in self.plan.affiliates:
                    first = self.plan.affiliates[external_id].line
                    raise duplicate("external_id", external_id, first)
                username = text_cell(row, "username", 150, required=True)
                try:
                    username_validator(username)
                except ValidationError:
                    raise Bad(
                        "username",
                        f"{username!r} may hold only letters, digits and @ . + - _",
                    ) from None
                if username in usernames:
                    raise duplicate("username", username, usernames[username])
                email = text_cell(row, "email", 254, required=True)
                try:
                    validate_email(email)
                except ValidationError:
                    raise Bad("email", f"{email!r} is not an email address") from None
                display = text_cell(row, "name", 200, required=True)
                status = choice_cell(row, "status", Affiliate.Status.values)
                time_zone = row.get("time_zone") or "UTC"
                if time_zone not in zones:
                    raise Bad("time_zone", f"{time_zone!r} is not a known time zone")
                currency = currency_cell(row, "currency", default_currency)
                parent = row.get("parent_external_id") or ""
                if parent == external_id:
                    raise Bad("parent_external_id", "an affiliate cannot be its own parent")
                created_at = moment_cell(row, "created_at", required=False, now=self.now)
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
        for batch in chunks(by_username):
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
                external_id = text_cell(row, "external_id", 200, required=True)
                if external_id in self.plan.campaigns:
                    first = self.plan.campaigns[external_id].line
                    raise duplicate("external_id", external_id, first)
                brand = text_cell(row, "brand", 200, required=True)
                title = text_cell(row, "name", 200, required=True)
                if (brand, title) in keys:
                    raise Bad(
                        "name",
                        f"duplicate campaign {title!r} of brand {brand!r} "
                        f"(line {keys[(brand, title)]})",
                    )
                status = choice_cell(row, "status", Campaign.Status.values, "active")
                urls = {c: url_cell(row, c) for c in ("web_url", "ios_url", "android_url")}
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
                code = text_cell(row, "code", 64, required=True)
                if not CODE_RE.match(code):
                    raise Bad(
                        "code",
                        f"{code!r} may hold only letters, digits and . _ ~ - "
                        "(it goes in /c/<code>)",
                    )
                if code in self.plan.links:
                    raise duplicate("code", code, self.plan.links[code].line)
                subs = tuple(text_cell(row, s, SUB_MAX) for s in SUBS)
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
            url_validator(url)
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
        for batch in chunks(by_code):
            for link in links.filter(code__in=batch):
                by_code[link.code].existing = link
        by_legacy = {r.legacy: r for r in rows if r.legacy}
        found: dict[tuple[str, str], LegacyLink] = {}
        by_path: dict[str, list[str]] = defaultdict(list)
        for path, key in by_legacy:
            by_path[path].append(key)
        for path, keys in by_path.items():
            for batch in chunks(keys):
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
                    raise duplicate("click_id", click_id, seen[click_id])
                code = text_cell(row, "link_code", 64, required=True)
                created_at = moment_cell(row, "created_at", now=self.now)
                ip = row.get("ip") or ""
                if ip:
                    try:
                        ip = ip_value(ip)
                    except ValueError:
                        raise Bad("ip", f"{ip!r} is not an IP address") from None
                user_agent = clean_line(row.get("user_agent") or "", USER_AGENT_MAX)
                platform = (
                    choice_cell(row, "platform", PLATFORMS)
                    if row.get("platform")
                    else platform_from_user_agent(user_agent)
                )
                country = country_cell(row)
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
        for batch in chunks(unknown):
            for link in links.filter(code__in=batch):
                self.plan.known_links[link.code] = (
                    link.affiliate.user.username,
                    (link.campaign.brand.name, link.campaign.name),
                )
        existing: dict[str, str] = {}
        for batch in chunks([v[0] for _, v in parsed]):
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
                external_id = text_cell(row, "external_id", 200, required=True)
                if external_id in self.plan.conversions:
                    first = self.plan.conversions[external_id].line
                    raise duplicate("external_id", external_id, first)
                click_id = text_cell(row, "click_id", 64)
                kind = choice_cell(row, "type", ConversionType.values)
                status = choice_cell(row, "status", Conversion.Status.values, "approved")
                occurred_at = moment_cell(row, "occurred_at", now=self.now)
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
                currency = currency_cell(row, "currency")
                if revenue is not None and not currency:
                    raise Bad("currency", "is empty; it is required with a revenue")
                player_id = text_cell(row, "player_id", 128)
                platform = choice_cell(row, "platform", PLATFORMS) if row.get("platform") else ""
                country = country_cell(row)
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
        for batch in chunks(here):
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
        for batch in chunks(by_key):
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
