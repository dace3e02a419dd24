"""The demo program `seed_demo` builds: idempotent, so running it twice changes nothing."""

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote, urlencode

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice
from ulid import ULID

from affiliates.models import (
    Affiliate,
    App,
    Brand,
    Campaign,
    CampaignAccess,
    TermsAcceptance,
    TermsVersion,
    TrackingLink,
)
from attribution.clicks.destination import platform_from_user_agent
from attribution.ingestion import door
from attribution.models import Click, PostbackSource, SourceKind
from attribution.processing import single
from attribution.rollups import keep
from payouts.models import CommissionPlan, CpaRule, FxRate, PlanAssignment, PlanVersion, Tier

DEMO_TERMS_FROM = datetime(2025, 1, 1, tzinfo=UTC)  # the demo's terms, accepted by its affiliates
DEMO_PASSWORD = "demo-portal-2026"  # noqa: S105 - printed for the demo logins, never a real one
# The demo manager's authenticator secret (the admin asks for a code when ADMIN_2FA is on).
DEMO_TOTP_KEY = "3132333435363738393031323334353637383930"
MANAGER = "manager"
AFFILIATES = [
    # username, display name, parent username, time zone, currency
    ("alice", "Alice Media Ltd", None, "Europe/Berlin", "EUR"),
    ("bob", "Bob Apps (Alice's sub-affiliate)", "alice", "Europe/London", "GBP"),
    ("charlie", "Charlie Traffic", None, "America/New_York", "USD"),
    ("dana", "Dana Casino Reviews", None, "Europe/Malta", "EUR"),
    ("erik", "Erik Social", None, "Europe/Stockholm", "EUR"),
]
USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
]
COUNTRIES = ["DE", "GB", "SE", "MT", "CA", "NZ", "FI", "NO"]
SUB1 = ["facebook", "tiktok", "google", "newsletter", "seo", ""]
# Demo clicks come from TEST-NET-3 (RFC 5737), where no real visitor is: a later run tells them
# from real clicks on the same links by it.
DEMO_NETWORK = "203.0.113."


@dataclass
class DemoProgram:
    manager: str
    password: str
    affiliates: dict[str, dict] = field(default_factory=dict)
    brand_id: int = 0
    campaigns: dict[str, int] = field(default_factory=dict)
    apps: dict[str, int] = field(default_factory=dict)
    links: list[dict] = field(default_factory=list)
    sources: list[dict] = field(default_factory=list)
    manager_totp: str = ""
    clicks: int = 0
    conversions: int = 0

    def as_json(self) -> dict:
        return {
            "logins": {
                "manager": {
                    "username": self.manager,
                    "password": self.password,
                    "totp_url": self.manager_totp,
                },
                "affiliates": {
                    name: {"username": name, "password": self.password, **info}
                    for name, info in self.affiliates.items()
                },
            },
            "brand_id": self.brand_id,
            "campaigns": self.campaigns,
            "apps": self.apps,
            "links": self.links,
            "postback_sources": self.sources,
            "clicks": self.clicks,
            "postbacks_sent": self.conversions,
        }


def _user(username: str, *, staff: bool) -> object:
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(
        username=username,
        defaults={"email": f"{username}@demo.example", "is_staff": staff, "is_superuser": staff},
    )
    if created:
        user.set_password(DEMO_PASSWORD)
        user.save(update_fields=["password"])
    return user


@transaction.atomic
def _program(base_url: str) -> tuple[DemoProgram, list[TrackingLink]]:
    demo = DemoProgram(manager=MANAGER, password=DEMO_PASSWORD)
    manager = _user(MANAGER, staff=True)
    device, _ = TOTPDevice.objects.get_or_create(
        user=manager, name="demo authenticator", defaults={"key": DEMO_TOTP_KEY, "confirmed": True}
    )
    demo.manager_totp = device.config_url
    terms, _ = TermsVersion.objects.get_or_create(
        version=1,
        defaults={
            "text": "Promote the program's offers honestly. No brand bidding, no incentivised "
            "or adult traffic, no spam. Commission follows the plan shown on each offer.",
            "published_at": DEMO_TERMS_FROM,
        },
    )
    for username, name, parent, tz, currency in AFFILIATES:
        affiliate, _ = Affiliate.objects.get_or_create(
            user=_user(username, staff=False),
            defaults={
                "name": name,
                "status": Affiliate.Status.ACTIVE,
                "parent": Affiliate.objects.get(user__username=parent) if parent else None,
                "manager": manager,
                "time_zone": tz,
                "currency": currency,
            },
        )
        demo.affiliates[username] = {"affiliate_id": affiliate.pk, "name": affiliate.name}
        TermsAcceptance.objects.get_or_create(user=affiliate.user, terms=terms)

    brand, _ = Brand.objects.get_or_create(
        name="Lucky Spins", defaults={"website": "https://luckyspins.example", "currency": "EUR"}
    )
    demo.brand_id = brand.pk
    ios, _ = App.objects.get_or_create(
        platform="ios",
        bundle_id="com.luckyspins.casino",
        defaults={
            "brand": brand,
            "name": "Lucky Spins Casino",
            "app_store_id": "1234567890",
            "mmp": App.MMP.APPSFLYER,
        },
    )
    android, _ = App.objects.get_or_create(
        platform="android",
        bundle_id="com.luckyspins.casino",
        defaults={"brand": brand, "name": "Lucky Spins Casino", "mmp": App.MMP.ADJUST},
    )
    demo.apps = {"ios": ios.pk, "android": android.pk}
    demo.sources = _sources(brand, ios, android, base_url)
    adjust_token = next(s["token"] for s in demo.sources if s["kind"] == "adjust")
    web_url = (
        "https://www.luckyspins.example/welcome?click_id={click_id}&aff={affiliate_id}&s1={sub1}"
    )
    ios_url = "https://app.appsflyer.com/id1234567890"
    callback = quote(f"{base_url}/postbacks/adjust/{adjust_token}/", safe="")
    android_url = f"https://app.adjust.com/lsp1x2y?install_callback={callback}"
    specs = {
        "web": {"web_url": web_url},
        "ios": {
            "ios_app": ios,
            "ios_url": ios_url,
            "web_url": "https://apps.apple.com/app/id1234567890",
        },
        "android": {
            "android_app": android,
            "android_url": android_url,
            "web_url": "https://play.google.com/store/apps/details?id=com.luckyspins.casino",
        },
        "all": {
            "web_url": web_url,
            "ios_app": ios,
            "ios_url": ios_url,
            "android_app": android,
            "android_url": android_url,
        },
    }
    names = {
        "web": "Web FTD",
        "ios": "iOS installs",
        "android": "Android installs",
        "all": "All platforms",
    }
    links = []
    for key, spec in specs.items():
        campaign, _ = Campaign.objects.get_or_create(brand=brand, name=names[key], defaults=spec)
        demo.campaigns[key] = campaign.pk
        for username in demo.affiliates:
            link, _ = TrackingLink.objects.get_or_create(
                affiliate_id=demo.affiliates[username]["affiliate_id"],
                campaign=campaign,
                name="demo",
                defaults={"sub1": "demo"},
            )
            links.append(link)
            demo.links.append(
                {"code": link.code, "affiliate": username, "campaign": key, "link_id": link.pk}
            )
    # An offer that needs a manager's approval, with one affiliate's request waiting for it.
    gated, _ = Campaign.objects.get_or_create(
        brand=brand,
        name="High rollers (approval)",
        defaults={
            "web_url": web_url,
            "visibility": Campaign.Visibility.APPROVAL,
            "description": "VIP casino offer for players who deposit 500 EUR or more.",
            "allowed_sources": "SEO, email to opted-in lists, streamers",
            "forbidden_sources": "brand bidding, incentivised, adult",
            "fallback_url": "https://www.luckyspins.example/",
        },
    )
    first = min(demo.affiliates)
    CampaignAccess.objects.get_or_create(
        affiliate_id=demo.affiliates[first]["affiliate_id"],
        campaign=gated,
        defaults={"message": "Casino review site, 40k visits a month from DE and AT"},
    )
    return demo, links


SOURCES = [
    # kind, name, which app (or the brand), event mapping
    ("appsflyer", "AppsFlyer iOS", "ios", {"af_first_deposit": "ftd", "af_reg": "registration"}),
    ("adjust", "Adjust Android", "android", {"ftd": "ftd", "reg": "registration"}),
    ("branch", "Branch iOS", "ios", {"first_deposit": "ftd"}),
    ("singular", "Singular Android", "android", {"ftd": "ftd"}),
    ("kochava", "Kochava Android", "android", {"ftd": "ftd"}),
    ("s2s", "Lucky Spins backend", None, {"reg": "registration", "ftd": "ftd", "dep": "deposit"}),
    (SourceKind.SKADNETWORK, "Apple SKAdNetwork", "ios", {}),
    (SourceKind.ADATTRIBUTIONKIT, "Apple AdAttributionKit", "ios", {}),
]
DEMO_BASE_URL = "http://127.0.0.1:8000"


def _sources(brand: Brand, ios: App, android: App, base_url: str) -> list[dict]:
    listed = []
    for kind, name, app, mapping in SOURCES:
        source, _ = PostbackSource.objects.get_or_create(
            kind=kind,
            name=name,
            defaults={
                "app": {"ios": ios, "android": android}.get(app),
                "brand": brand if app is None else None,
                "event_mapping": mapping,
            },
        )
        listed.append(
            {
                "id": source.pk,
                "kind": str(source.kind),
                "name": source.name,
                "token": source.token,
                "url": base_url + source.path,
            }
        )
    return listed


def seed_demo(
    *,
    clicks: int = 5000,
    days: int = 30,
    progress: Callable[[int], None] | None = None,
    postback_progress: Callable[[int, int], None] | None = None,
    base_url: str = DEMO_BASE_URL,
) -> DemoProgram:
    """Build the demo program and ``clicks`` clicks spread over the last ``days`` days.

    Clicks are generated once: a second run finds the demo's own clicks and inserts nothing, and
    its postbacks are the first run's again (duplicates), whatever traffic came in between.
    ``base_url`` is where the portal answers (the sources' postback URLs, Adjust's callback).
    """
    demo, links = _program(base_url.rstrip("/"))
    if _demo_clicks(links).exists():
        clicks = 0
    rng = random.Random(2026)  # noqa: S311 - demo data, not security
    now = timezone.now().replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=days)
    batch: list[Click] = []
    # All or none: a run stopped half-way must not leave a part that the next run takes as done.
    with transaction.atomic():
        for n in range(clicks):
            link = rng.choice(links)
            at = start + timedelta(seconds=rng.randrange(days * 86400))
            ua = rng.choice(USER_AGENTS)
            platform = platform_from_user_agent(ua)
            device = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            batch.append(
                Click(
                    click_id=str(
                        ULID.from_bytes(int(at.timestamp() * 1000).to_bytes(6) + rng.randbytes(10))
                    ),
                    link=link,
                    affiliate_id=link.affiliate_id,
                    campaign_id=link.campaign_id,
                    created_at=at,
                    ip=f"{DEMO_NETWORK}{rng.randrange(1, 255)}",
                    user_agent=ua,
                    platform=platform,
                    country=rng.choice(COUNTRIES),
                    sub1=rng.choice(SUB1),
                    sub2=f"ad{rng.randrange(1, 20)}",
                    gaid=device if platform == "android" and rng.random() < 0.6 else "",
                    idfa=device.upper() if platform == "ios" and rng.random() < 0.3 else "",
                )
            )
            if len(batch) == 1000 or n == clicks - 1:
                Click.objects.bulk_create(batch, ignore_conflicts=True, batch_size=1000)
                if progress:
                    progress(len(batch))
                batch = []
    demo.clicks = Click.objects.filter(link__in=links).count()
    _money_setup(demo)
    demo.conversions = _conversions(_demo_clicks(links), demo, progress=postback_progress)
    while keep.clicks_fill(settle=timedelta(0)):
        pass
    return demo


def _demo_clicks(links: list[TrackingLink]) -> QuerySet[Click]:
    """The clicks the demo generated, told from real visits to the same links by their address."""
    return Click.objects.filter(link__in=links, ip__startswith=DEMO_NETWORK)


def _money_setup(demo: DemoProgram) -> None:
    """A hybrid deal (FTD CPA with a minimum deposit, RevShare, a sub-affiliate level) on every
    demo campaign, and FX rates for the affiliates' currencies."""
    plan, created = CommissionPlan.objects.get_or_create(
        name="Lucky Spins hybrid", defaults={"currency": "EUR", "hold_days": 14}
    )
    if created:
        version = PlanVersion.objects.create(
            plan=plan,
            valid_from=timezone.now() - timedelta(days=400),
            revshare_percent=Decimal("25"),
            subaffiliate_percents=["10"],
        )
        CpaRule.objects.create(
            version=version,
            conversion_type="ftd",
            amount=Decimal("100.00"),
            min_amount=Decimal("20.00"),
        )
        CpaRule.objects.create(version=version, conversion_type="install", amount=Decimal("2.00"))
        Tier.objects.create(version=version, from_ftds=1, cpa_amount=Decimal("100.00"))
        Tier.objects.create(version=version, from_ftds=11, cpa_amount=Decimal("130.00"))
    for campaign_id in demo.campaigns.values():
        PlanAssignment.objects.get_or_create(campaign_id=campaign_id, affiliate=None, plan=plan)
    # The plan's first day, not today's date minus 400 days: a run on another day adds no rate.
    day = plan.versions.order_by("valid_from").values_list("valid_from", flat=True)[0].date()
    for currency, rate in (("GBP", "1.16"), ("USD", "0.92")):
        FxRate.objects.get_or_create(day=day, currency=currency, defaults={"rate": Decimal(rate)})


def _conversions(
    clicks: QuerySet[Click],
    demo: DemoProgram,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Send installs, sign-ups and deposits for some demo clicks through the real ingestion and
    attribution code, as the MMPs and the operator's backend would.

    What each click brings is drawn from its own generator, seeded with its id, so neither other
    clicks on the demo links nor the time of the run change it: a second run sends the same
    postbacks again, and they are only duplicates. Each is stored and attributed here, in one
    transaction, with no task for a worker.
    """
    tokens = {s["kind"]: s["token"] for s in demo.sources}
    rows = list(clicks.order_by("pk").values_list("click_id", "platform", "created_at"))
    if not rows:
        return 0
    # Nothing happens after the newest demo click, the moment the clicks were made: a later run
    # leaves out exactly what the first one left out as still to come.
    horizon = max(at for _, _, at in rows)
    made = 0
    for n, (click_id, platform, clicked_at) in enumerate(rows):
        steps = _postbacks(click_id, platform, clicked_at)
        for kind, at, params in steps:
            if at > horizon:
                break
            with transaction.atomic():
                outcome = door.postback_ingest(
                    kind=kind,
                    token=tokens[kind],
                    method="GET",
                    query=urlencode(params),
                    body=b"",
                    meta={},
                    remote_addr=None,
                    hand_off=False,
                )
                if outcome.created:
                    single.postback_process(postback_id=outcome.postback_id)
                    made += 1
        if progress:
            progress(n + 1, len(rows))
    return made


def _postbacks(click_id: str, platform: str, clicked_at: datetime) -> list[tuple]:
    """What one demo click brings: (source kind, time, query parameters) in time order."""
    # The click id's random part (its last 16 characters; the first 10 are its time) was drawn
    # by the seed's own generator: the same on every fresh seed, unlike the time.
    rng = random.Random(f"demo:{click_id[10:]}")  # noqa: S311 - demo data
    if rng.random() >= 0.12:
        return []
    at = clicked_at + timedelta(minutes=rng.randrange(1, 240))
    if platform != "web" and click_id[-1] in "0123":
        # About one mobile install in eight comes seconds after its click: held for review (low
        # CTIT), so that the demo's review queue has something to decide. Chosen by the click
        # id, not the rng, so every other draw stays as it was.
        at = clicked_at + timedelta(seconds=4)
    ref = click_id.lower()
    if platform == "web":
        steps = [
            (
                "s2s",
                at,
                {
                    "click_id": click_id,
                    "event": "reg",
                    "txid": f"demo-r-{ref}",
                    "player_id": f"demo-p-{ref}",
                    "time": int(at.timestamp()),
                },
            )
        ]
        if rng.random() < 0.45:
            ftd_at = at + timedelta(hours=1)
            steps.append(
                (
                    "s2s",
                    ftd_at,
                    {
                        "event": "ftd",
                        "txid": f"demo-f-{ref}",
                        "player_id": f"demo-p-{ref}",
                        "amount": f"{rng.choice([10, 25, 50, 100, 250])}.00",
                        "currency": "EUR",
                        "time": int(ftd_at.timestamp()),
                    },
                )
            )
        return steps
    if platform == "ios":
        steps = [
            (
                "appsflyer",
                at,
                {
                    "clickid": click_id,
                    "appsflyer_id": f"demo-af-{ref}",
                    "platform": "ios",
                    "app_id": "id1234567890",
                    "install_unix_ts": int(at.timestamp()),
                },
            )
        ]
        if rng.random() < 0.35:
            ftd_at = at + timedelta(hours=2)
            steps.append(
                (
                    "appsflyer",
                    ftd_at,
                    {
                        "appsflyer_id": f"demo-af-{ref}",
                        "event_name": "af_first_deposit",
                        "customer_user_id": f"demo-p-{ref}",
                        "event_revenue": "50.00",
                        "event_revenue_currency": "EUR",
                        "event_time": ftd_at.strftime("%Y-%m-%d %H:%M:%S"),
                    },
                )
            )
        return steps
    return [
        (
            "adjust",
            at,
            {
                "click_id": click_id,
                "adid": f"demo-adid-{ref}",
                "activity_kind": "install",
                "created_at": int(at.timestamp()),
                "os_name": "android",
            },
        )
    ]
