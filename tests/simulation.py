"""A month of affiliate traffic with the truth known: the generator behind the acceptance test.

``generate(seed)`` is pure and deterministic (one ``random.Random(seed)``): it returns a
:class:`Month` holding the program (affiliates with a sub-affiliate, one brand, an iOS and an
Android app, campaigns, tracking links, a postback source of every kind, SKAdNetwork mappings) and
stories: clicks and postbacks on a timeline in October 2026, each postback carrying the outcome the
portal must reach (:class:`Truth`). ``install(month)`` writes the program to the database.

Click ids are the server's, so a postback names its click by a :class:`ClickRef` that the sender
replaces with the id the click was given (:meth:`PostbackStep.resolved`). Clicks' times are the
server's too: the sender moves each click to its story time after making it.

Every story uses its own devices, players and IP address, so only the stories built to collide
(cross-source duplicates, two affiliates on one device, the IP burst) ever meet.
"""

from __future__ import annotations

import dataclasses
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from affiliates.models import Affiliate, App, Brand, Campaign, TrackingLink
from attribution.models import PostbackSource, SkanMapping
from payouts.models import CommissionPlan, CpaRule, FxRate, PlanAssignment, PlanVersion

MONTH_START = datetime(2026, 10, 1, tzinfo=UTC)
MONTH_END = datetime(2026, 11, 1, tzinfo=UTC)
PLAN_FROM = datetime(2026, 1, 1, tzinfo=UTC)
SKAN_VECTORS = Path(__file__).resolve().parent / "fixtures" / "skan-test-vectors.json"

IPHONE_UA = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
DESKTOP_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
ZERO_UUID = "00000000-0000-0000-0000-000000000000"  # what a device with tracking limited sends
UA_PLATFORM = {IPHONE_UA: "ios", ANDROID_UA: "android", DESKTOP_UA: "web"}

MMPS = ("appsflyer", "adjust", "branch", "singular", "kochava")
IOS_MMPS = ("appsflyer", "branch", "kochava")
ANDROID_MMPS = ("adjust", "singular")
MMP_PLATFORM = {"appsflyer": "ios", "branch": "ios", "kochava": "ios"} | {
    "adjust": "android",
    "singular": "android",
}
COUNTRIES = ("DE", "GB", "FR", "ES", "IT", "NL", "SE", "CA", "AU", "BR")
CURRENCIES = ("EUR", "USD", "GBP")

# What each sender calls our conversion types (its source's event mapping covers the odd ones).
EVENT_NAMES = {
    "appsflyer": {
        "purchase": "af_purchase",
        "registration": "af_complete_registration",
        "custom": "af_level_achieved",
    },
    "adjust": {"purchase": "purchase", "registration": "registration", "custom": "tutorial_done"},
    "branch": {
        "purchase": "PURCHASE",
        "registration": "COMPLETE_REGISTRATION",
        "custom": "ACHIEVE_LEVEL",
    },
    "singular": {"purchase": "__iap__", "registration": "sign_up", "custom": "level_up"},
    "kochava": {
        "purchase": "Purchase",
        "registration": "Registration Complete",
        "custom": "Tutorial Complete",
    },
}
ADJUST_TOKENS = {"purchase": "qk2f8a", "registration": "r7d1xz", "custom": "t9mc3b"}
EVENT_MAPPINGS = {
    "appsflyer": {"af_first_deposit": "ftd"},
    "adjust": {},
    "branch": {},
    "singular": {"__iap__": "purchase"},
    "kochava": {"Registration Complete": "registration"},
    "s2s": {"reg": "registration", "first_deposit": "ftd", "dep": "deposit"},
}


# --- the program -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AffiliateSpec:
    username: str
    name: str
    parent: str | None = None
    time_zone: str = "UTC"  # reports count days in it


@dataclass(frozen=True)
class PlanSpec:
    """The program's commission plan, the default of every campaign (EUR, no hold)."""

    cpa: dict[str, str]  # conversion type -> amount
    sub_levels: tuple[str, ...]  # percent of a sub-affiliate's commission per level up


@dataclass(frozen=True)
class AppSpec:
    key: str  # "ios" | "android"
    name: str
    platform: str
    bundle_id: str
    app_store_id: str
    mmp: str
    skan_schema: dict[str, str]


@dataclass(frozen=True)
class CampaignSpec:
    key: str  # "ios" | "android" | "web"
    name: str
    app: str | None
    url: str  # the destination template for its platform


@dataclass(frozen=True)
class LinkSpec:
    code: str
    affiliate: str
    campaign: str


@dataclass(frozen=True)
class SourceSpec:
    kind: str
    name: str
    token: str
    app: str | None  # MMPs: the app they measure; s2s: None (the brand's backend)
    event_mapping: dict[str, str]


@dataclass(frozen=True)
class SkanMappingSpec:
    ad_network_id: str
    source_identifier: str
    affiliate: str


@dataclass(frozen=True)
class Program:
    brand: str
    affiliates: tuple[AffiliateSpec, ...]
    apps: tuple[AppSpec, ...]
    campaigns: tuple[CampaignSpec, ...]
    links: tuple[LinkSpec, ...]
    sources: tuple[SourceSpec, ...]
    skan_mappings: tuple[SkanMappingSpec, ...]
    plan: PlanSpec = PlanSpec({}, ())
    fx_to_eur: tuple[tuple[str, str], ...] = ()  # the managers' rates, from 2026-01-01

    def link(self, affiliate: str, campaign: str) -> str:
        return next(
            link.code
            for link in self.links
            if (link.affiliate, link.campaign) == (affiliate, campaign)
        )

    def app(self, key: str) -> AppSpec:
        return next(app for app in self.apps if app.key == key)

    def source(self, kind: str) -> SourceSpec:
        return next(source for source in self.sources if source.kind == kind)


# --- the timeline ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClickRef:
    """A click of the story, named; the sender puts the server-assigned click id in its place."""

    name: str


@dataclass(frozen=True)
class Where:
    """Where a conversion belongs in the reports: when it happened, and the platform, country,
    campaign and sub1 of what its player came through (the click, the install)."""

    at: datetime
    platform: str  # ios, android or web
    country: str
    campaign: str  # the campaign's key
    sub1: str = ""


@dataclass(frozen=True)
class Truth:
    """What the portal must make of one postback."""

    affiliate: str | None  # username; None: organic
    status: str
    reason: str
    method: str
    type: str
    revenue: Decimal | None = None
    duplicate_of: str | None = None  # label of the postback whose conversion holds the claim
    currency: str = ""  # the revenue's
    where: Where | None = None  # for the reports (None: organic, or SKAdNetwork's aggregate)

    @property
    def outcome(self) -> tuple[str | None, str, str]:
        return (self.affiliate, self.status, self.reason)


@dataclass(frozen=True)
class ClickStep:
    story: str
    seq: int
    at: datetime  # the click's time: moved there after the server made it
    ref: str
    link: str  # the tracking link's code
    user_agent: str
    query: dict[str, str]
    country: str


@dataclass(frozen=True)
class PostbackStep:
    story: str
    seq: int
    at: datetime  # when the sender sends it: the timeline's order (event times are in `data`)
    label: str  # unique in the month
    source: str  # a PostbackSource kind, or "skadnetwork" (Apple's fixed path)
    method: str  # "GET" (data is the query) or "POST" (data is the body)
    data: dict[str, Any]
    body_format: str = "json"  # POST only: "json" or "form"
    truth: Truth | None = None  # None for a retry and for a later report
    retry_of: str | None = None  # the label this repeats, byte for byte
    report_of: str | None = None  # the operator's later report (a new status) of this label

    def resolved(self, click_ids: dict[str, str]) -> dict[str, Any]:
        """``data`` with every :class:`ClickRef` replaced by the click id the server gave it."""

        def resolve(value: Any) -> Any:
            if isinstance(value, ClickRef):
                return click_ids[value.name]
            if isinstance(value, dict):
                return {k: resolve(v) for k, v in value.items()}
            return value

        return resolve(self.data)


Step = ClickStep | PostbackStep


@dataclass
class Story:
    id: str
    kind: str
    steps: list[Step] = field(default_factory=list)


@dataclass
class Month:
    seed: int
    program: Program
    stories: list[Story]

    @property
    def timeline(self) -> list[Step]:
        """Every step of every story in time order (the generation order breaks ties)."""
        steps = [step for story in self.stories for step in story.steps]
        return sorted(steps, key=lambda step: (step.at, step.seq))

    @property
    def clicks(self) -> list[ClickStep]:
        return [step for step in self.timeline if isinstance(step, ClickStep)]

    @property
    def postbacks(self) -> list[PostbackStep]:
        return [step for step in self.timeline if isinstance(step, PostbackStep)]

    @property
    def truths(self) -> dict[str, Truth]:
        return {step.label: step.truth for step in self.postbacks if step.truth is not None}

    def counts(self) -> dict[str, Counter]:
        """Stories by kind, expected conversions by reason: for the summary and sanity checks."""
        truths = self.truths.values()
        return {
            "stories": Counter(story.kind for story in self.stories),
            "reasons": Counter(truth.reason for truth in truths),
            "statuses": Counter(truth.status for truth in truths),
            "methods": Counter(truth.method for truth in truths),
            "types": Counter(truth.type for truth in truths),
            "sources": Counter(step.source for step in self.postbacks),
        }


# --- sender formats ----------------------------------------------------------------------------


def unix(moment: datetime) -> str:
    return str(int(moment.timestamp()))


def unix_ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000 + moment.microsecond // 1000


def af_time(moment: datetime) -> str:
    """AppsFlyer's ``yyyy-mm-dd hh:mm:ss.sss`` in UTC."""
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Device:
    platform: str  # "ios" | "android"
    idfa: str = ""  # "" when the user limited tracking
    idfv: str = ""
    gaid: str = ""
    ip: str = ""
    country: str = ""
    mmp_ids: dict[str, str] = field(default_factory=dict)


def _ok(affiliate: str, method: str, type_: str, revenue: Decimal | None = None) -> Truth:
    return Truth(affiliate, "approved", "ok", method, type_, revenue)


def _organic(type_: str, revenue: Decimal | None = None) -> Truth:
    return Truth(None, "approved", "organic", "none", type_, revenue)


class _Generator:
    """Builds one month; every random choice comes from ``self.rng``, in a fixed order."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.seq = 0
        self.ips = 0
        self.numbers = 0
        self.stories: list[Story] = []
        self.program = self._program()
        self.affiliates = [a.username for a in self.program.affiliates]

    # -- the program ---------------------------------------------------------------------------

    def _program(self) -> Program:
        affiliates = (
            AffiliateSpec("northwind", "Northwind Media", time_zone="Europe/Berlin"),
            AffiliateSpec(
                "northwind_sub", "Northwind Sub Apps", parent="northwind", time_zone="Asia/Kolkata"
            ),
            AffiliateSpec("bluefin", "Bluefin Performance", time_zone="America/New_York"),
            AffiliateSpec("cobalt", "Cobalt Traffic"),
            AffiliateSpec("dunmore", "Dunmore Reviews", time_zone="Australia/Sydney"),
        )
        apps = (
            AppSpec(
                "ios",
                "Lucky Spins Casino",
                "ios",
                "com.luckyspins.casino",
                "525463029",
                "appsflyer",
                {"0-9": "registration", "60-63": "ftd", "high": "ftd"},
            ),
            AppSpec(
                "android",
                "Lucky Spins Casino",
                "android",
                "com.luckyspins.casino",
                "",
                "adjust",
                {},
            ),
        )
        campaigns = (
            CampaignSpec(
                "ios",
                "Lucky Spins iOS launch",
                "ios",
                "https://app.appsflyer.com/id525463029?pid=affportal_int&af_c_id={campaign_id}",
            ),
            CampaignSpec(
                "android",
                "Lucky Spins Android launch",
                "android",
                "https://app.adjust.com/jsr7q9?campaign={campaign_id}&adgroup={affiliate_id}"
                "&click_id={click_id}",
            ),
            CampaignSpec(
                "web",
                "Lucky Spins welcome bonus",
                None,
                "https://www.luckyspins.example/welcome?cid={click_id}&aff={affiliate_id}"
                "&s1={sub1}",
            ),
        )
        links = tuple(
            LinkSpec(f"sim{self.seed}-{a.username}-{c.key}"[:64], a.username, c.key)
            for a in affiliates
            for c in campaigns
        )
        sources = tuple(
            SourceSpec(
                kind,
                f"Lucky Spins {kind}",
                f"sim{self.seed}-{kind}-{self.rng.getrandbits(64):016x}",
                MMP_PLATFORM.get(kind),
                EVENT_MAPPINGS[kind],
            )
            for kind in (*MMPS, "s2s")
        )
        skan_mappings = (
            SkanMappingSpec("com.example", "5239", "northwind"),
            SkanMappingSpec("com.example", "39", "northwind_sub"),
            SkanMappingSpec("example123.skadnetwork", "42", "cobalt"),
        )
        plan = PlanSpec({"install": "2.00", "registration": "1.50", "ftd": "25.00"}, ("10",))
        fx_to_eur = (("USD", "0.92"), ("GBP", "1.16"))
        return Program(
            "Lucky Spins", affiliates, apps, campaigns, links, sources, skan_mappings, plan,
            fx_to_eur,
        )  # fmt: skip

    # -- ids -----------------------------------------------------------------------------------

    def _uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _digits(self, n: int) -> str:
        return str(self.rng.randrange(10 ** (n - 1), 10**n))

    def _number(self) -> int:
        self.numbers += 1
        return self.numbers

    def _ip(self) -> str:
        """A fresh address per story (198.18.0.0/15, the benchmarking range): none are shared."""
        self.ips += 1
        return f"198.18.{self.ips // 200}.{self.ips % 200 + 20}"

    def _amount(self, low: int = 99, high: int = 9999) -> Decimal:
        return Decimal(self.rng.randint(low, high)).scaleb(-2)

    def _device(self, platform: str, *, idfa: bool | None = None) -> Device:
        rng = self.rng
        device = Device(platform, ip=self._ip(), country=rng.choice(COUNTRIES))
        if platform == "ios":
            with_idfa = rng.random() < 0.75 if idfa is None else idfa
            device.idfa = self._uuid().upper() if with_idfa else ""
            device.idfv = self._uuid().upper()
            device.mmp_ids = {
                "appsflyer": f"{unix_ms(MONTH_START) + rng.randrange(10**9)}-{self._digits(19)}",
                "branch": f"dev-{rng.getrandbits(64):016x}",
                "kochava": f"KA{rng.getrandbits(80):020x}",
            }
        else:
            device.gaid = self._uuid()
            device.mmp_ids = {"adjust": f"{rng.getrandbits(128):032x}", "singular": self._uuid()}
        return device

    # -- steps ---------------------------------------------------------------------------------

    def _story(self, kind: str) -> Story:
        story = Story(f"{kind}-{sum(s.kind == kind for s in self.stories) + 1:02d}", kind)
        self.stories.append(story)
        return story

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _start(self, span: timedelta) -> datetime:
        """A story start that leaves ``span`` before the month ends, to the second."""
        room = (MONTH_END - MONTH_START - span - timedelta(hours=2)).total_seconds()
        return MONTH_START + timedelta(hours=1, seconds=self.rng.randrange(int(room)))

    def _delay(self) -> timedelta:
        """How long after the event its sender posts it (small: senders are near real time)."""
        return timedelta(seconds=self.rng.randint(1, 20))

    def click(
        self,
        story: Story,
        at: datetime,
        affiliate: str,
        campaign: str,
        *,
        device: Device | None = None,
        with_device_id: bool = False,
        user_agent: str | None = None,
    ) -> ClickRef:
        rng = self.rng
        ref = f"{story.id}/click{sum(isinstance(s, ClickStep) for s in story.steps) + 1}"
        query: dict[str, str] = {}
        if rng.random() < 0.4:
            query["sub1"] = rng.choice(("spring", "push", "seo", "tiktok", "email"))
        if device is not None and with_device_id:
            if device.idfa:
                query["idfa"] = device.idfa
            if device.gaid:
                query["gaid"] = device.gaid
        if user_agent is None:
            platform = device.platform if device else campaign
            user_agent = {"ios": IPHONE_UA, "android": ANDROID_UA}.get(platform, DESKTOP_UA)
        country = device.country if device else rng.choice(COUNTRIES)
        story.steps.append(
            ClickStep(
                story.id,
                self._next_seq(),
                at,
                ref,
                self.program.link(affiliate, campaign),
                user_agent,
                query,
                country,
            )
        )
        return ClickRef(ref)

    def where(
        self,
        story: Story,
        click: ClickRef | None,
        at: datetime,
        *,
        platform: str | None = None,
        country: str | None = None,
    ) -> Where | None:
        """Where a conversion credited through ``click`` belongs: the click's campaign and sub1;
        its device's platform and country unless the sender says otherwise."""
        if click is None:
            return None
        step = next(s for s in story.steps if isinstance(s, ClickStep) and s.ref == click.name)
        campaign = next(link.campaign for link in self.program.links if link.code == step.link)
        return Where(
            at=at,
            platform=platform or UA_PLATFORM[step.user_agent],
            country=step.country if country is None else country,
            campaign=campaign,
            sub1=step.query.get("sub1", ""),
        )

    def send(
        self,
        story: Story,
        at: datetime,
        name: str,
        source: str,
        payload: tuple[str, dict[str, Any], str],
        truth: Truth,
        where: Where | None = None,
    ) -> str:
        method, data, body_format = payload
        label = f"{story.id}/{name}"
        truth = dataclasses.replace(truth, where=where)
        story.steps.append(
            PostbackStep(
                story.id, self._next_seq(), at, label, source, method, data, body_format, truth
            )
        )
        return label

    def maybe_retry(self, story: Story, label: str, chance: float) -> None:
        """MMPs retry until they see 200: repeat the postback 1-2 times, minutes later."""
        if self.rng.random() >= chance:
            return
        original = next(s for s in story.steps if getattr(s, "label", None) == label)
        at = original.at
        for n in range(self.rng.randint(1, 2)):
            at += timedelta(seconds=self.rng.randint(30, 1800))
            story.steps.append(
                PostbackStep(
                    story.id,
                    self._next_seq(),
                    at,
                    f"{label}#retry{n + 1}",
                    original.source,
                    original.method,
                    original.data,
                    original.body_format,
                    None,
                    retry_of=label,
                )
            )

    # -- what each MMP sends -------------------------------------------------------------------

    def install_payload(
        self,
        kind: str,
        device: Device,
        at: datetime,
        *,
        click: ClickRef | None = None,
        click_at: datetime | None = None,
        blocked: tuple[str, str] | None = None,
    ) -> tuple[str, dict[str, Any], str]:
        rng = self.rng
        ios, android = self.program.app("ios"), self.program.app("android")
        touch = {} if click_at is None else {"at": click_at}
        if kind == "appsflyer":
            data: dict[str, Any] = {
                "clickid": click or "",
                "idfa": device.idfa or ZERO_UUID,
                "idfv": device.idfv,
                "appsflyer_id": device.mmp_ids["appsflyer"],
                "app_id": f"id{ios.app_store_id}",
                "bundle_id": ios.bundle_id,
                "platform": "ios",
                "country_code": device.country,
                "install_unix_ts": unix(at),
                "attributed_touch_type": "click" if click else "",
                "attributed_touch_time": af_time(touch["at"]) if touch else "",
                "is_retargeting": rng.choice(("false", "FALSE", "0")),
                "ip": device.ip,
            }
            if blocked:
                data["blocked_reason"], data["blocked_reason_value"] = blocked
            if not click and rng.random() < 0.5:
                data = {k: v for k, v in data.items() if v != ""}  # dropped, not sent empty
            return "GET", data, ""
        if kind == "adjust":
            data = {
                "click_id": click or "",
                "gps_adid": device.gaid,
                "adid": device.mmp_ids["adjust"],
                "tracker": "jsr7q9",
                "tracker_name": "Affiliate Portal::Android launch::::",
                "activity_kind": "rejected_install" if blocked else "install",
                "created_at": unix(at),
                "installed_at": unix(at),
                "click_time": unix(touch["at"]) if touch else "",
                "country": device.country.lower(),
                "os_name": "android",
                "ip_address": device.ip,
                "app_id": android.bundle_id,
            }
            if blocked:
                data["rejection_reason"] = blocked[0]
            return "GET", {k: v for k, v in data.items() if v != ""}, ""
        if kind == "branch":
            user = {
                "os": "IOS",
                "platform": "IOS_APP",
                "idfa": device.idfa,
                "idfv": device.idfv,
                "developer_identity": device.mmp_ids["branch"],
                "ip": device.ip,
                "geo_country_code": device.country,
                "user_agent": IPHONE_UA,
            }
            body: dict[str, Any] = {
                "name": "INSTALL",
                "id": self._digits(18),
                "timestamp": unix_ms(at),
                "attributed": click is not None,
                "user_data": {k: v for k, v in user.items() if v},
            }
            if touch:
                body["last_attributed_touch_type"] = "CLICK"
                body["last_attributed_touch_timestamp"] = unix_ms(touch["at"])
            touch_data: dict[str, Any] = {}
            if click is not None:
                touch_data = {
                    "~channel": "affiliates",
                    "~feature": "paid advertising",
                    "~campaign": "Lucky Spins iOS launch",
                    "click_id": click,
                    "+click_timestamp": int(touch["at"].timestamp()) if touch else None,
                }
            if touch_data:
                body["last_attributed_touch_data"] = {
                    k: v for k, v in touch_data.items() if v is not None
                }
            return "POST", body, "json"
        if kind == "singular":
            data = {
                "evtname": "__INSTALL__",
                "cl": click or "{cl?Network}",  # unfilled when there was no click of ours
                "clid": f"{rng.getrandbits(64):016x}",  # Singular's own click id: never ours
                "device_id": device.mmp_ids["singular"],
                "aifa": device.gaid,
                "idfa": "{IDFA}",  # Android: Singular leaves the iOS macro unfilled
                "platform": "Android",
                "longname": android.bundle_id,
                "install_utc": unix(at),
                "utc": unix(at),
                "click_utc": unix(touch["at"]) if touch else "{CLICK_UTC}",
                "country": device.country,
                "ip": device.ip,
            }
            return "GET", data, ""
        if kind == "kochava":
            data = {
                "event_name": "_install",
                "event_id": self._digits(12),
                "kochava_device_id": device.mmp_ids["kochava"],
                "idfa": device.idfa,
                "idfv": device.idfv,
                "click_id": click or "",
                "install_time": unix(at),
                "event_time": unix(at),
                "click_time": unix(touch["at"]) if touch else "",
                "app_id": "kolucky-spins-casino-ios-5f3a",
                "platform": "ios",
                "country": device.country,
                "ip": device.ip,
                "network_name": "Affiliate Portal",
            }
            return "GET", {k: v for k, v in data.items() if v != ""}, ""
        raise ValueError(kind)

    def event_payload(
        self,
        kind: str,
        device: Device,
        at: datetime,
        type_: str,
        *,
        installed_at: datetime,
        revenue: Decimal | None = None,
        currency: str = "",
    ) -> tuple[str, dict[str, Any], str]:
        """An in-app event that names the device by the MMP's own id only (chained by it)."""
        rng = self.rng
        name = EVENT_NAMES[kind][type_]
        money = revenue is not None
        if kind == "appsflyer":
            data: dict[str, Any] = {
                "appsflyer_id": device.mmp_ids["appsflyer"],
                "app_id": f"id{self.program.app('ios').app_store_id}",
                "platform": "ios",
                "event_name": name,
                "event_time": af_time(at),
                "install_unix_ts": unix(installed_at),
                "ip": device.ip,
            }
            if money and rng.random() < 0.5:
                data["event_revenue"] = str(revenue)
                data["event_revenue_currency"] = currency
            elif money:
                # Revenue only inside event_value, with the order id (the event's txid).
                data["event_value"] = json.dumps(
                    {
                        "af_revenue": str(revenue),
                        "af_currency": currency,
                        "af_order_id": f"ORD-{self._number():05d}",
                    }
                )
            return "GET", data, ""
        if kind == "adjust":
            data = {
                "adid": device.mmp_ids["adjust"],
                "activity_kind": "event",
                "created_at": unix(at),
                "installed_at": unix(installed_at),
                "event": ADJUST_TOKENS[type_],
                "event_name": name,
                "os_name": "android",
                "ip_address": device.ip,
            }
            if money:
                data["revenue_float"], data["currency"] = str(revenue), currency
            return "GET", data, ""
        if kind == "branch":
            body: dict[str, Any] = {
                "name": name,
                "id": self._digits(18),
                "timestamp": unix_ms(at),
                "user_data": {
                    "os": "IOS",
                    "developer_identity": device.mmp_ids["branch"],
                    "ip": device.ip,
                },
            }
            if money:
                body["event_data"] = {
                    "transaction_id": f"BR-{self._number():05d}",
                    # Branch sends a JSON number: the adapter must make an exact Decimal of it.
                    "revenue": float(revenue),
                    "currency": currency,
                }
            return "POST", body, "json"
        if kind == "singular":
            data = {
                "evtname": name,
                "device_id": device.mmp_ids["singular"],
                "platform": "Android",
                "longname": self.program.app("android").bundle_id,
                "ip": device.ip,
            }
            if rng.random() < 0.5:
                data["utc"] = unix(at)
            else:
                data["utcm"] = str(unix_ms(at))
            if rng.random() < 0.5:
                data["event_id"] = f"{rng.getrandbits(64):016x}"
            if money:
                data["amount"], data["currency"] = str(revenue), currency
            return "GET", data, ""
        if kind == "kochava":
            data = {
                "event_name": name,
                "event_id": self._digits(12),
                "kochava_device_id": device.mmp_ids["kochava"],
                "event_time": unix(at),
                "platform": "ios",
                "ip": device.ip,
            }
            if money:
                data["revenue"], data["currency"] = str(revenue), currency
            return "GET", data, ""
        raise ValueError(kind)

    def s2s_payload(self, data: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
        """The operator's backend: GET, or POST as JSON or a form (amounts as text)."""
        style = self.rng.choice(("GET", "json", "form"))
        if style == "GET":
            return "GET", data, ""
        if style == "form":
            return "POST", data, "form"
        return "POST", data, "json"

    def in_app_events(
        self,
        story: Story,
        kind: str,
        device: Device,
        installed_at: datetime,
        affiliate: str | None,
        *,
        count: int,
        origin: ClickRef | None = None,
    ) -> None:
        """Events after the install, hours to days apart, chained by the MMP's device id."""
        at = installed_at
        for n in range(count):
            at += timedelta(hours=self.rng.randint(2, 40), seconds=self.rng.randint(0, 3599))
            type_ = self.rng.choice(("purchase", "purchase", "registration", "custom"))
            revenue = self._amount() if type_ == "purchase" else None
            currency = self.rng.choice(CURRENCIES)
            payload = self.event_payload(
                kind,
                device,
                at,
                type_,
                installed_at=installed_at,
                revenue=revenue,
                currency=currency,
            )
            truth = (
                _ok(affiliate, "install_chain", type_, revenue)
                if affiliate
                else _organic(type_, revenue)
            )
            where = self.where(story, origin, at, platform=MMP_PLATFORM[kind])
            truth = dataclasses.replace(truth, currency=currency if revenue is not None else "")
            label = self.send(
                story, at + self._delay(), f"event{n + 1}", kind, payload, truth, where
            )
            self.maybe_retry(story, label, 0.15)

    # -- stories -------------------------------------------------------------------------------

    def attributed_install(self, kind: str) -> None:
        """Click, then an install through ``kind`` carrying our click id; then in-app events."""
        rng = self.rng
        story = self._story(f"install_{kind}")
        platform = MMP_PLATFORM[kind]
        device = self._device(platform)
        affiliate = rng.choice(self.affiliates)
        clicked = self._start(timedelta(days=9))
        click = self.click(
            story, clicked, affiliate, platform, device=device, with_device_id=rng.random() < 0.5
        )
        installed = clicked + timedelta(seconds=rng.randint(60, 2 * 86400))
        payload = self.install_payload(kind, device, installed, click=click, click_at=clicked)
        label = self.send(
            story,
            installed + self._delay(),
            "install",
            kind,
            payload,
            _ok(affiliate, "click_id", "install"),
            self.where(story, click, installed, platform=platform, country=device.country),
        )
        self.maybe_retry(story, label, 0.35)
        self.in_app_events(
            story, kind, device, installed, affiliate, count=rng.randint(0, 3), origin=click
        )

    def device_id_install(self, kind: str) -> None:
        """The click carries the advertising id; the install carries no click id, only it."""
        rng = self.rng
        story = self._story(f"device_{kind}")
        platform = MMP_PLATFORM[kind]
        device = self._device(platform, idfa=True)
        affiliate = rng.choice(self.affiliates)
        clicked = self._start(timedelta(days=9))
        click = self.click(story, clicked, affiliate, platform, device=device, with_device_id=True)
        installed = clicked + timedelta(seconds=rng.randint(60, 5 * 86400))
        payload = self.install_payload(kind, device, installed)
        label = self.send(
            story,
            installed + self._delay(),
            "install",
            kind,
            payload,
            _ok(affiliate, "device_id", "install"),
            self.where(story, click, installed, platform=platform, country=device.country),
        )
        self.maybe_retry(story, label, 0.25)
        self.in_app_events(
            story, kind, device, installed, affiliate, count=rng.randint(0, 1), origin=click
        )

    def organic_install(self, kind: str) -> None:
        """No click of ours: organic, and so are the device's later events."""
        story = self._story(f"organic_{kind}")
        device = self._device(MMP_PLATFORM[kind])
        installed = self._start(timedelta(days=5))
        payload = self.install_payload(kind, device, installed)
        label = self.send(
            story, installed + self._delay(), "install", kind, payload, _organic("install")
        )
        self.maybe_retry(story, label, 0.25)
        self.in_app_events(story, kind, device, installed, None, count=self.rng.randint(0, 2))

    def web_player(self, *, second_ftd: bool) -> None:
        """A web sign-up by click id and player id, then the FTD and deposits by player id."""
        rng = self.rng
        story = self._story("web_player")
        affiliate = rng.choice(self.affiliates)
        ip, country = self._ip(), rng.choice(COUNTRIES)
        player = f"P{self._digits(8)}"
        clicked = self._start(timedelta(days=15))
        ua = rng.choice((DESKTOP_UA, DESKTOP_UA, IPHONE_UA, ANDROID_UA))  # a mobile browser too
        click = self.click(story, clicked, affiliate, "web", user_agent=ua)
        registered = clicked + timedelta(seconds=rng.randint(60, 3600))
        common = {"player_id": player, "country": country, "ip": ip}
        label = self.send(
            story,
            registered + self._delay(),
            "registration",
            "s2s",
            self.s2s_payload(
                {
                    "click_id": click,
                    "event": rng.choice(("reg", "registration", "signup")),
                    "txid": f"REG-{self._number():05d}",
                    "time": iso(registered),
                    **common,
                }
            ),
            _ok(affiliate, "click_id", "registration"),
            self.where(story, click, registered, country=country),
        )
        self.maybe_retry(story, label, 0.2)

        at = registered + timedelta(seconds=rng.randint(300, 2 * 86400))
        amount = self._amount(1000, 50000)
        ftd = self.send(
            story,
            at + self._delay(),
            "ftd",
            "s2s",
            self.s2s_payload(
                {
                    "event": rng.choice(("ftd", "first_deposit")),
                    "txid": f"DEP-{self._number():05d}",
                    "amount": str(amount),
                    "currency": "EUR",
                    "time": iso(at),
                    **common,
                }
            ),
            _ok(affiliate, "install_chain", "ftd", amount),
            self.where(story, click, at, country=country),
        )
        self.maybe_retry(story, ftd, 0.2)
        deposits = rng.randint(0, 3)
        for n in range(deposits + (1 if second_ftd else 0)):
            at += timedelta(hours=rng.randint(2, 60), seconds=rng.randint(0, 3599))
            amount = self._amount(1000, 30000)
            duplicate = second_ftd and n == deposits  # the operator reports a second "FTD"
            truth = (
                Truth(affiliate, "rejected", "duplicate_ftd", "install_chain", "ftd", amount, ftd)
                if duplicate
                else _ok(affiliate, "install_chain", "deposit", amount)
            )
            event = (
                rng.choice(("ftd", "first_deposit"))
                if duplicate
                else rng.choice(("deposit", "dep"))
            )
            label = self.send(
                story,
                at + self._delay(),
                "second_ftd" if duplicate else f"deposit{n + 1}",
                "s2s",
                self.s2s_payload(
                    {
                        "event": event,
                        "txid": f"DEP-{self._number():05d}",
                        "amount": str(amount),
                        "currency": "EUR",
                        "time": iso(at),
                        **common,
                    }
                ),
                truth,
                self.where(story, click, at, country=country),
            )
            self.maybe_retry(story, label, 0.15)

    def report_later(self, story: Story, label: str, at: datetime, status: str) -> None:
        """The operator's later report of a transaction: only its event, txid and new status."""
        original = next(s for s in story.steps if getattr(s, "label", None) == label)
        method, data, body_format = self.s2s_payload(
            {"event": original.data["event"], "txid": original.data["txid"], "status": status}
        )
        story.steps.append(
            PostbackStep(
                story.id,
                self._next_seq(),
                at,
                f"{label}@{status}",
                "s2s",
                method,
                data,
                body_format,
                None,
                report_of=label,
            )
        )

    def operator_reports(self) -> None:
        """A web player whose FTD the operator reports pending and confirms later, and whose
        deposits it declines later, or declines first and approves after all."""
        rng = self.rng
        story = self._story("operator_reports")
        affiliate = rng.choice(self.affiliates)
        player = f"P{self._digits(8)}"
        common = {"player_id": player, "country": rng.choice(COUNTRIES), "ip": self._ip()}
        clicked = self._start(timedelta(days=15))
        click = self.click(story, clicked, affiliate, "web", user_agent=DESKTOP_UA)
        at = clicked + timedelta(seconds=rng.randint(60, 3600))
        registration = {"click_id": click, "event": "reg", "txid": f"REG-{self._number():05d}"}
        self.send(
            story,
            at + self._delay(),
            "registration",
            "s2s",
            self.s2s_payload({**registration, "time": iso(at), **common}),
            _ok(affiliate, "click_id", "registration"),
            self.where(story, click, at, country=common["country"]),
        )
        # (name, event, first status, later status, truth's status and reason)
        steps = (
            ("ftd", "ftd", "pending", "approved", "approved", "ok"),
            ("deposit1", "deposit", "", "declined", "rejected", "declined"),
            ("deposit2", "deposit", "declined", "approved", "approved", "ok"),
        )
        for name, event, first, later, status, reason in steps:
            at += timedelta(hours=rng.randint(2, 30), seconds=rng.randint(0, 3599))
            amount = self._amount(1000, 30000)
            data = {"event": event, "txid": f"DEP-{self._number():05d}", "amount": str(amount),
                    "currency": "EUR", "time": iso(at), **common}  # fmt: skip
            if first:
                data["status"] = first
            truth = Truth(affiliate, status, reason, "install_chain", event, amount)
            sent = at + self._delay()
            where = self.where(story, click, at, country=common["country"])
            label = self.send(story, sent, name, "s2s", self.s2s_payload(data), truth, where)
            self.maybe_retry(story, label, 0.3)
            self.report_later(story, label, sent + timedelta(hours=rng.randint(1, 48)), later)

    def cross_source_duplicate(self) -> None:
        """AppsFlyer and Branch both report one install (same IDFA): the first report holds."""
        rng = self.rng
        story = self._story("cross_source")
        device = self._device("ios", idfa=True)
        affiliate = rng.choice(self.affiliates)
        clicked = self._start(timedelta(days=4))
        click = self.click(story, clicked, affiliate, "ios", device=device, with_device_id=True)
        installed = clicked + timedelta(seconds=rng.randint(120, 86400))
        branch_has_click = rng.random() < 0.5
        reports = {
            "appsflyer": (
                self.install_payload("appsflyer", device, installed, click=click, click_at=clicked),
                "click_id",
            ),
            "branch": (
                self.install_payload(
                    "branch",
                    device,
                    installed,
                    click=click if branch_has_click else None,
                    click_at=clicked if branch_has_click else None,
                ),
                "click_id" if branch_has_click else "device_id",
            ),
        }
        first, second = rng.sample(sorted(reports), 2)
        sent = installed + self._delay()
        winner = self.send(
            story,
            sent,
            f"install_{first}",
            first,
            reports[first][0],
            _ok(affiliate, reports[first][1], "install"),
            self.where(story, click, installed, platform="ios", country=device.country),
        )
        self.send(
            story,
            sent + timedelta(seconds=rng.randint(30, 900)),
            f"install_{second}",
            second,
            reports[second][0],
            Truth(
                affiliate,
                "rejected",
                "duplicate_claim",
                reports[second][1],
                "install",
                None,
                winner,
            ),
            self.where(story, click, installed, platform="ios", country=device.country),
        )

    def two_affiliates(self) -> None:
        """Two affiliates' clicks on one device, the install claimed with each: last click wins."""
        rng = self.rng
        story = self._story("two_affiliates")
        device = self._device("ios", idfa=True)
        early_aff, late_aff = rng.sample(self.affiliates, 2)
        first_click = self._start(timedelta(days=4))
        second_click = first_click + timedelta(seconds=rng.randint(600, 3 * 86400))
        early = self.click(story, first_click, early_aff, "ios", device=device, with_device_id=True)
        late = self.click(story, second_click, late_aff, "ios", device=device, with_device_id=True)
        installed = second_click + timedelta(seconds=rng.randint(120, 7200))
        late_source, early_source = rng.sample(("appsflyer", "branch"), 2)
        claims = {
            "late": (
                late_source,
                self.install_payload(
                    late_source, device, installed, click=late, click_at=second_click
                ),
            ),
            "early": (
                early_source,
                self.install_payload(
                    early_source, device, installed, click=early, click_at=first_click
                ),
            ),
        }
        order = rng.sample(("late", "early"), 2)  # whichever arrives first, the last click wins
        sent = installed + self._delay()
        labels = {}
        for n, which in enumerate(order):
            source, payload = claims[which]
            truth = (
                _ok(late_aff, "click_id", "install")
                if which == "late"
                else Truth(
                    early_aff,
                    "rejected",
                    "duplicate_claim",
                    "click_id",
                    "install",
                    None,
                    f"{story.id}/install_late",
                )
            )
            labels[which] = self.send(
                story,
                sent + timedelta(seconds=n * rng.randint(30, 900)),
                f"install_{which}",
                source,
                payload,
                truth,
                self.where(
                    story,
                    late if which == "late" else early,
                    installed,
                    platform="ios",
                    country=device.country,
                ),
            )
        assert labels["late"] == f"{story.id}/install_late"

    def click_injection(self, kind: str) -> None:
        """An install seconds after the click (under the 10 s minimum): held, low_ctit."""
        rng = self.rng
        story = self._story("click_injection")
        platform = MMP_PLATFORM[kind]
        device = self._device(platform)
        affiliate = rng.choice(self.affiliates)
        clicked = self._start(timedelta(days=1))
        click = self.click(story, clicked, affiliate, platform, device=device)
        installed = clicked + timedelta(seconds=rng.randint(1, 9))
        payload = self.install_payload(kind, device, installed, click=click, click_at=clicked)
        truth = Truth(affiliate, "pending", "low_ctit", "click_id", "install")
        where = self.where(story, click, installed, platform=platform, country=device.country)
        self.send(story, installed + self._delay(), "install", kind, payload, truth, where)

    def outside_lookback(self, kind: str) -> None:
        """An install 8-12 days after its click (the lookback is 7): held, outside_lookback."""
        rng = self.rng
        story = self._story("outside_lookback")
        platform = MMP_PLATFORM[kind]
        device = self._device(platform)
        affiliate = rng.choice(self.affiliates)
        clicked = self._start(timedelta(days=13))
        click = self.click(story, clicked, affiliate, platform, device=device)
        installed = clicked + timedelta(days=rng.randint(8, 11), seconds=rng.randint(0, 86399))
        payload = self.install_payload(kind, device, installed, click=click, click_at=clicked)
        truth = Truth(affiliate, "pending", "outside_lookback", "click_id", "install")
        where = self.where(story, click, installed, platform=platform, country=device.country)
        self.send(story, installed + self._delay(), "install", kind, payload, truth, where)

    def mmp_blocked(self, kind: str) -> None:
        """An install the MMP blocked as fraud: recorded against the click, rejected, never paid."""
        rng = self.rng
        story = self._story("mmp_blocked")
        platform = MMP_PLATFORM[kind]
        device = self._device(platform)
        affiliate = rng.choice(self.affiliates)
        clicked = self._start(timedelta(days=3))
        click = self.click(story, clicked, affiliate, platform, device=device)
        installed = clicked + timedelta(seconds=rng.randint(300, 2 * 86400))
        blocked = (
            rng.choice(("click_flood", "install_hijacking", "bots")),
            rng.choice(("high_ctit_anomaly", "sdk_signature", "")),
        )
        if kind == "adjust":
            blocked = (rng.choice(("too_many_engagements", "anonymous_traffic")), "")
        payload = self.install_payload(
            kind, device, installed, click=click, click_at=clicked, blocked=blocked
        )
        truth = Truth(affiliate, "rejected", "mmp_blocked", "click_id", "install")
        where = self.where(story, click, installed, platform=platform, country=device.country)
        label = self.send(story, installed + self._delay(), "install", kind, payload, truth, where)
        self.maybe_retry(story, label, 0.3)

    def ip_burst(self, size: int) -> None:
        """``size`` installs from one IP within the hour: the 6th onwards held as ip_burst."""
        rng = self.rng
        story = self._story("ip_burst")
        affiliate = rng.choice(self.affiliates)
        ip = self._ip()
        at = self._start(timedelta(hours=2))
        for n in range(size):
            kind = rng.choice(MMPS)
            platform = MMP_PLATFORM[kind]
            device = self._device(platform)
            device.ip = ip
            installed = at + timedelta(minutes=6 * n, seconds=rng.randint(0, 59))
            clicked = installed - timedelta(seconds=rng.randint(60, 240))
            click = self.click(story, clicked, affiliate, platform, device=device)
            payload = self.install_payload(kind, device, installed, click=click, click_at=clicked)
            truth = (
                _ok(affiliate, "click_id", "install")
                if n < 5
                else Truth(affiliate, "pending", "ip_burst", "click_id", "install")
            )
            where = self.where(story, click, installed, platform=platform, country=device.country)
            self.send(
                story, installed + self._delay(), f"install{n + 1}", kind, payload, truth, where
            )

    def device_burst(self) -> None:
        """Five purchases from one device within the hour: the 4th onwards held as device_burst."""
        rng = self.rng
        story = self._story("device_burst")
        device = self._device("ios")
        affiliate = rng.choice(self.affiliates)
        clicked = self._start(timedelta(days=3))
        click = self.click(story, clicked, affiliate, "ios", device=device)
        installed = clicked + timedelta(seconds=rng.randint(300, 7200))
        payload = self.install_payload(
            "appsflyer", device, installed, click=click, click_at=clicked
        )
        self.send(
            story,
            installed + self._delay(),
            "install",
            "appsflyer",
            payload,
            _ok(affiliate, "click_id", "install"),
            self.where(story, click, installed, platform="ios", country=device.country),
        )
        at = installed + timedelta(hours=1)
        for n in range(5):
            at += timedelta(minutes=9, seconds=rng.randint(0, 59))
            revenue, currency = self._amount(), rng.choice(CURRENCIES)
            payload = self.event_payload(
                "appsflyer",
                device,
                at,
                "purchase",
                installed_at=installed,
                revenue=revenue,
                currency=currency,
            )
            truth = (
                _ok(affiliate, "install_chain", "purchase", revenue)
                if n < 3
                else Truth(
                    affiliate, "pending", "device_burst", "install_chain", "purchase", revenue
                )
            )
            truth = dataclasses.replace(truth, currency=currency)
            where = self.where(story, click, at, platform="ios", country=device.country)
            self.send(
                story, at + self._delay(), f"purchase{n + 1}", "appsflyer", payload, truth, where
            )

    def skan(self) -> None:
        """Apple's signed postbacks (the valid test vectors): credited through the mapping."""
        story = self._story("skan")
        vectors = json.loads(SKAN_VECTORS.read_text())
        by_transaction = {}
        for vector in vectors:
            postback = vector.get("postback") or {}
            if vector.get("expect_valid_apple_signature") and postback.get("transaction-id"):
                by_transaction.setdefault(postback["transaction-id"], vector)
        # 4.0 fine value, 4.0 coarse value (a sub-affiliate's mapping), 3.0 winner, 3.0 loser.
        chosen = [
            (v["postback"], v["postback"].get("did-win") is not False)
            for v in by_transaction.values()
            if v["version"] in ("4.0", "3.0")
        ]
        mapped = {
            (m.ad_network_id, m.source_identifier): m.affiliate for m in self.program.skan_mappings
        }
        at = self._start(timedelta(days=3))
        first = ""
        for n, (postback, won) in enumerate(chosen):
            at += timedelta(hours=self.rng.randint(1, 20))
            source_id = str(postback.get("source-identifier") or postback.get("campaign-id"))
            affiliate = mapped[(postback["ad-network-id"], source_id)]
            truth = (
                Truth(affiliate, "approved", "ok", "skan", "install")
                if won
                else Truth(affiliate, "rejected", "not_winning", "skan", "install")
            )
            label = self.send(
                story, at, f"skan{n + 1}", "skadnetwork", ("POST", postback, "json"), truth
            )
            first = first or label
        self.maybe_retry(story, first, 1.0)  # Apple's devices retry for days

    def browsing(self, clicks: int) -> None:
        """Clicks that never convert, on every link: the everyday bulk of traffic."""
        story = self._story("browsing")
        rng = self.rng
        moments = sorted(self._start(timedelta(0)) for _ in range(clicks))
        for at in moments:
            campaign = rng.choice(("ios", "android", "web"))
            ua = rng.choice((IPHONE_UA, ANDROID_UA, DESKTOP_UA))
            self.click(story, at, rng.choice(self.affiliates), campaign, user_agent=ua)

    def month(self) -> Month:
        for kind in MMPS:
            for _ in range(6):
                self.attributed_install(kind)
            for _ in range(2):
                self.device_id_install(kind)
                self.organic_install(kind)
        for n in range(14):
            self.web_player(second_ftd=n % 4 == 0)
        for _ in range(3):
            self.operator_reports()
        for _ in range(4):
            self.cross_source_duplicate()
        for _ in range(3):
            self.two_affiliates()
        for kind in ("appsflyer", "adjust", "singular", "kochava"):
            self.click_injection(kind)
        for kind in ("appsflyer", "adjust", "kochava"):
            self.outside_lookback(kind)
        for kind in ("appsflyer", "appsflyer", "adjust"):
            self.mmp_blocked(kind)
        self.ip_burst(8)
        self.ip_burst(7)
        self.device_burst()
        self.skan()
        self.browsing(120)
        month = Month(self.seed, self.program, self.stories)
        _check(month)
        return month


def _check(month: Month) -> None:
    """The generator's own promises: unique labels, times inside the month, stories in order."""
    labels = [step.label for step in month.postbacks]
    assert len(labels) == len(set(labels)), "postback labels repeat"
    for story in month.stories:
        assert all(MONTH_START <= step.at < MONTH_END for step in story.steps), story.id
        events = [s for s in story.steps if isinstance(s, PostbackStep) and s.truth]
        assert [s.at for s in events] == sorted(s.at for s in events), story.id


def generate(seed: int) -> Month:
    """The month for ``seed``: the same seed, the same month."""
    return _Generator(seed).month()


def install(month: Month) -> None:
    """Write the month's program to the database (an empty one: the simulation owns it)."""
    program = month.program
    user_model = get_user_model()
    affiliates: dict[str, Affiliate] = {}
    for spec in program.affiliates:
        user = user_model.objects.create(username=spec.username, email=f"{spec.username}@x.test")
        affiliates[spec.username] = Affiliate.objects.create(
            user=user,
            name=spec.name,
            status=Affiliate.Status.ACTIVE,
            parent=affiliates[spec.parent] if spec.parent else None,
            time_zone=spec.time_zone,
        )
    brand = Brand.objects.create(name=program.brand, website="https://www.luckyspins.example")
    apps = {
        spec.key: App.objects.create(
            brand=brand,
            name=spec.name,
            platform=spec.platform,
            bundle_id=spec.bundle_id,
            app_store_id=spec.app_store_id,
            mmp=spec.mmp,
            skan_schema=spec.skan_schema,
        )
        for spec in program.apps
    }
    campaigns = {}
    for spec in program.campaigns:
        destinations = {
            "ios": {"ios_app": apps.get("ios"), "ios_url": spec.url},
            "android": {"android_app": apps.get("android"), "android_url": spec.url},
            "web": {"web_url": spec.url},
        }[spec.key]
        campaigns[spec.key] = Campaign.objects.create(brand=brand, name=spec.name, **destinations)
    for spec in program.links:
        TrackingLink.objects.create(
            affiliate=affiliates[spec.affiliate], campaign=campaigns[spec.campaign], code=spec.code
        )
    for spec in program.sources:
        PostbackSource.objects.create(
            kind=spec.kind,
            name=spec.name,
            token=spec.token,
            app=apps[spec.app] if spec.app else None,
            brand=brand if spec.app is None else None,
            event_mapping=spec.event_mapping,
        )
    if program.plan.cpa:
        plan = CommissionPlan.objects.create(name="Lucky Spins CPA", currency="EUR", hold_days=0)
        version = PlanVersion.objects.create(
            plan=plan, valid_from=PLAN_FROM, subaffiliate_percents=list(program.plan.sub_levels)
        )
        for kind, amount in program.plan.cpa.items():
            CpaRule.objects.create(version=version, conversion_type=kind, amount=Decimal(amount))
        for campaign in campaigns.values():
            PlanAssignment.objects.create(plan=plan, campaign=campaign)
    for currency, rate in program.fx_to_eur:
        FxRate.objects.create(day=PLAN_FROM.date(), currency=currency, rate=Decimal(rate))
    for spec in program.skan_mappings:
        SkanMapping.objects.create(
            ad_network_id=spec.ad_network_id,
            source_identifier=spec.source_identifier,
            app=apps["ios"],
            campaign=campaigns["ios"],
            affiliate=affiliates[spec.affiliate],
        )


# --- the operator's player activity after the month (issue 15) ---------------------------------

ACTIVITY_MONTHS = (datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
PRODUCTS = ("casino", "sportsbook")


@dataclass(frozen=True)
class PlayerTruth:
    """A player of the month as the truth has them: who brought them, and when they joined."""

    player_id: str
    affiliate: str | None  # username; None: organic or declined
    registered_at: datetime | None
    ftd_at: datetime | None
    ftd_amount: Decimal | None
    channel: str = "web"  # of the conversion that credits them: mobile when it came from an app


@dataclass(frozen=True)
class ActivityRow:
    player_id: str
    day: str  # YYYY-MM-DD
    product: str
    ggr: Decimal
    bonuses: Decimal
    deposits: Decimal

    def as_api(self) -> dict[str, str]:
        return {
            "player_id": self.player_id,
            "date": self.day,
            "product": self.product,
            "currency": "EUR",
            "ggr": str(self.ggr),
            "bonuses": str(self.bonuses),
            "deposits": str(self.deposits),
        }


def players(month: Month) -> dict[str, PlayerTruth]:
    """Every player the operator's postbacks name, with the truth of their registration and
    first deposit (the first FTD the truth approves)."""
    found: dict[str, dict[str, Any]] = {}
    for step in month.postbacks:
        player = step.data.get("player_id") if step.source == "s2s" else None
        truth = step.truth
        if not player or truth is None or truth.type not in ("registration", "ftd"):
            continue
        facts = found.setdefault(player, {"affiliate": None, "registered_at": None, "ftd": None})
        at = datetime.fromisoformat(step.data["time"].replace("Z", "+00:00"))
        approved = truth.status == "approved"
        if approved and truth.affiliate and facts["affiliate"] is None:
            facts["affiliate"] = truth.affiliate
            origin = truth.where.platform if truth.where else "web"
            facts["channel"] = "web" if origin == "web" else "mobile"
        if truth.type == "registration" and approved:
            facts["registered_at"] = at
        if truth.type == "ftd" and approved and facts["ftd"] is None:
            facts["ftd"] = (at, truth.revenue)
    return {
        player: PlayerTruth(
            player,
            facts["affiliate"],
            facts["registered_at"],
            facts["ftd"][0] if facts["ftd"] else None,
            facts["ftd"][1] if facts["ftd"] else None,
            facts.get("channel", "web"),
        )
        for player, facts in found.items()
    }


def activity(month: Month) -> list[ActivityRow]:
    """October and November of every player's play, and of a few players nobody knows."""
    rng = random.Random(month.seed + 15)
    names = sorted(players(month)) + [f"U{n:07d}" for n in range(5)]
    rows = []
    for player in names:
        for first in ACTIVITY_MONTHS:
            days = rng.sample(range(1, 29), rng.randint(0, 3))
            for day in sorted(days):
                for product in rng.sample(PRODUCTS, rng.randint(1, 2)):
                    rows.append(
                        ActivityRow(
                            player,
                            first.replace(day=day).date().isoformat(),
                            product,
                            ggr=Decimal(rng.randint(-30000, 150000)) / 100,
                            bonuses=Decimal(rng.randint(0, 5000)) / 100,
                            deposits=Decimal(rng.randint(0, 40000)) / 100,
                        )
                    )
    return rows
