"""A realistic export of another affiliate platform, written as the CSV files import_program reads.

Seeded: the same seed and ``now`` give the same files. Nothing big is committed; tests write the
files into tmp_path.
"""

import csv
import random
import string
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "Asia/Kolkata",
    "Europe/Malta",
]
CURRENCIES = ["EUR", "EUR", "USD", "GBP"]
STATUSES = ["active"] * 16 + ["pending"] * 2 + ["suspended", "rejected"]
BRANDS = ["Lucky Spins", "Fortune FX", "Gem Quest"]
USER_AGENTS = [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 Chrome/126.0 Mobile Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Version/17.5 Safari/605.1",
]
COUNTRIES = ["DE", "GB", "SE", "MT", "CA", "NZ", "FI", "NO", ""]
SOURCES = ["facebook", "tiktok", "google", "newsletter", "seo", "", "", ""]

HEADERS = {
    "affiliates": [
        "external_id",
        "username",
        "email",
        "name",
        "status",
        "parent_external_id",
        "time_zone",
        "currency",
        "created_at",
    ],
    "campaigns": [
        "external_id",
        "brand",
        "name",
        "status",
        "web_url",
        "ios_url",
        "android_url",
        "click_lookback_days",
    ],
    "links": [
        "code",
        "affiliate_external_id",
        "campaign_external_id",
        "sub1",
        "sub2",
        "sub3",
        "sub4",
        "sub5",
        "legacy_url",
    ],
    "clicks": [
        "click_id",
        "link_code",
        "created_at",
        "ip",
        "user_agent",
        "platform",
        "country",
        "sub1",
        "sub2",
        "sub3",
        "sub4",
        "sub5",
        "gaid",
        "idfa",
    ],
    "conversions": [
        "external_id",
        "click_id",
        "affiliate_external_id",
        "campaign_external_id",
        "type",
        "occurred_at",
        "status",
        "revenue",
        "currency",
        "player_id",
    ],
}


@dataclass
class Export:
    directory: Path
    rows: dict[str, list[dict]] = field(default_factory=dict)

    def count(self, name: str) -> int:
        return len(self.rows[name])

    @property
    def usernames(self) -> dict[str, str]:
        return {a["external_id"]: a["username"] for a in self.rows["affiliates"]}

    @property
    def links(self) -> dict[str, dict]:
        return {link["code"]: link for link in self.rows["links"]}

    @property
    def legacy_links(self) -> list[dict]:
        return [link for link in self.rows["links"] if link["legacy_url"]]

    def write(self, directory: Path | None = None, *, extra: dict | None = None) -> Path:
        """Write the files (plus ``extra`` rows appended per file) into ``directory``."""
        directory = directory or self.directory
        directory.mkdir(parents=True, exist_ok=True)
        for name, header in HEADERS.items():
            with (directory / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=header)
                writer.writeheader()
                writer.writerows(self.rows[name])
                writer.writerows((extra or {}).get(name, []))
        return directory


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(
    directory: Path,
    *,
    now: datetime,
    seed: int = 7,
    affiliates: int = 300,
    campaigns: int = 12,
    links: int = 3000,
    clicks: int = 30_000,
    conversions: int = 800,
) -> Export:
    """A month of another platform's program, ending a day before ``now``."""
    rnd = random.Random(seed)
    export = Export(directory)
    now = now.replace(microsecond=0)

    rows = []
    for n in range(1, affiliates + 1):
        parent = ""
        if n > 20 and rnd.random() < 0.25:  # sub-affiliates, some two levels deep
            parent = f"AF{rnd.randint(1, n - 1):05d}"
        rows.append(
            {
                "external_id": f"AF{n:05d}",
                "username": f"partner{n}",
                "email": f"partner{n}@media{n % 37}.example",
                "name": f"Partner {n} Media",
                "status": rnd.choice(STATUSES),
                "parent_external_id": parent,
                "time_zone": rnd.choice(ZONES),
                "currency": rnd.choice(CURRENCIES),
                "created_at": _iso(now - timedelta(days=rnd.randint(40, 700))),
            }
        )
    export.rows["affiliates"] = rows
    active = [a["external_id"] for a in rows if a["status"] == "active"]

    rows = []
    for n in range(1, campaigns + 1):
        brand = BRANDS[n % len(BRANDS)]
        slug = brand.lower().replace(" ", "")
        mobile = n % 3 != 0
        rows.append(
            {
                "external_id": f"{100 + n}",
                "brand": brand,
                "name": f"{brand} offer {n}",
                "status": "active" if n % 6 else "paused",
                "web_url": f"https://{slug}.example/welcome?cid={{click_id}}&a={{affiliate_id}}"
                "&s1={sub1}",
                "ios_url": f"https://app.appsflyer.com/id10000{n}?pid=affportal_int"
                if mobile
                else "",
                "android_url": f"https://play.google.com/store/apps/details?id=com.{slug}.n{n}"
                "&referrer=clickid%3D{click_id}"
                if mobile
                else "",
                "click_lookback_days": str(rnd.choice([7, 7, 14, 30])),
            }
        )
    export.rows["campaigns"] = rows
    offers = [c["external_id"] for c in rows if c["status"] == "active"]

    rows, pairs, codes = [], set(), set()
    alphabet = string.ascii_letters + string.digits
    promotes = {a: rnd.sample(offers, k=min(len(offers), rnd.randint(1, 4))) for a in active}
    for n in range(links):
        code = "".join(rnd.choices(alphabet, k=rnd.choice([8, 10, 12])))
        while code in codes:
            code = "".join(rnd.choices(alphabet, k=10))
        codes.add(code)
        affiliate = rnd.choice(active)
        campaign = rnd.choice(promotes[affiliate])
        aff_num, offer_num = int(affiliate[2:]), int(campaign)
        legacy = ""
        if (affiliate, campaign) not in pairs:  # one old link per affiliate and offer
            pairs.add((affiliate, campaign))
            style = n % 3
            if style == 0:
                query = {"pid": aff_num, "offer_id": offer_num, "sub1": rnd.choice(SOURCES)}
                legacy = f"https://trk.oldnet.example/click?{urlencode(query)}"
            elif style == 1:
                query = {"offer_id": offer_num, "aff_id": aff_num, "aff_sub": "x"}
                legacy = f"https://oldnet.go2cloud.example/aff_c?{urlencode(query)}"
            else:
                query = {"a": aff_num, "c": offer_num, "s1": ""}
                legacy = f"https://go.oldnet.example/go/?{urlencode(query)}"
        rows.append(
            {
                "code": code,
                "affiliate_external_id": affiliate,
                "campaign_external_id": campaign,
                "sub1": rnd.choice(SOURCES),
                "sub2": "",
                "sub3": f"creative{rnd.randint(1, 5)}" if rnd.random() < 0.2 else "",
                "sub4": "",
                "sub5": "",
                "legacy_url": legacy,
            }
        )
    export.rows["links"] = rows
    link_rows = rows

    # Traffic as programs have it: a few big affiliates send most of it (Zipf), each mostly from
    # its home country.
    by_affiliate: dict[str, list[dict]] = {}
    for link in link_rows:
        by_affiliate.setdefault(link["affiliate_external_id"], []).append(link)
    senders = list(by_affiliate)
    rnd.shuffle(senders)
    weights = [1 / (rank + 1) ** 1.3 for rank in range(len(senders))]
    home = {a: rnd.choice(COUNTRIES[:-1]) for a in senders}
    rows, click_ids = [], set()
    start = now - timedelta(days=31)
    span = int(timedelta(days=30).total_seconds())
    for sender in rnd.choices(senders, weights, k=clicks):
        link = rnd.choice(by_affiliate[sender])
        click_id = uuid.UUID(int=rnd.getrandbits(128)).hex  # 32 hex characters, as Affise's
        if rnd.random() < 0.1:
            click_id = f"102{rnd.getrandbits(60):018d}"  # TUNE-style numeric transaction ids
        while click_id in click_ids:
            click_id = uuid.UUID(int=rnd.getrandbits(128)).hex
        click_ids.add(click_id)
        user_agent = rnd.choice(USER_AGENTS)
        ios, android = "iPhone" in user_agent, "Android" in user_agent
        device = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
        rows.append(
            {
                "click_id": click_id,
                "link_code": link["code"],
                "created_at": _iso(start + timedelta(seconds=rnd.randrange(span))),
                "ip": f"{rnd.randint(11, 220)}.{rnd.randint(0, 255)}.{rnd.randint(0, 255)}."
                f"{rnd.randint(1, 254)}",
                "user_agent": user_agent,
                "platform": ""
                if rnd.random() < 0.5
                else ("ios" if ios else "android" if android else "web"),
                "country": home[sender] if rnd.random() < 0.85 else rnd.choice(COUNTRIES),
                "sub1": link["sub1"] or rnd.choice(SOURCES),
                "sub2": rnd.choice(["", "", f"ad{rnd.randint(1, 4)}"]),
                "sub3": link["sub3"],
                "sub4": "",
                "sub5": "",
                "gaid": device if android and rnd.random() < 0.6 else "",
                "idfa": device.upper() if ios and rnd.random() < 0.4 else "",
            }
        )
    export.rows["clicks"] = rows
    click_rows = rows

    rows = []
    links_by_code = {link["code"]: link for link in link_rows}
    for n in range(1, conversions + 1):
        kind = rnd.choice(["registration", "registration", "ftd", "deposit", "install"])
        status = rnd.choice(["approved"] * 8 + ["pending", "rejected"])
        revenue, currency = "", ""
        if kind in ("ftd", "deposit"):
            revenue, currency = f"{rnd.randint(10, 500)}.{rnd.randint(0, 99):02d}", "EUR"
        if rnd.random() < 0.7:
            click = rnd.choice(click_rows)
            link = links_by_code[click["link_code"]]
            clicked = datetime.fromisoformat(click["created_at"])
            occurred = min(clicked + timedelta(minutes=rnd.randint(2, 4000)), now)
            affiliate = link["affiliate_external_id"] if rnd.random() < 0.5 else ""
            campaign = link["campaign_external_id"] if affiliate else ""
            click_id = click["click_id"]
        else:
            link = rnd.choice(link_rows)
            click_id = ""
            affiliate, campaign = link["affiliate_external_id"], link["campaign_external_id"]
            occurred = start + timedelta(seconds=rnd.randrange(span))
        rows.append(
            {
                "external_id": f"CV-{n:06d}",
                "click_id": click_id,
                "affiliate_external_id": affiliate,
                "campaign_external_id": campaign,
                "type": kind,
                "occurred_at": _iso(occurred),
                "status": status,
                "revenue": revenue,
                "currency": currency,
                "player_id": f"P{rnd.randint(1, 10**7)}" if kind != "install" else "",
            }
        )
    export.rows["conversions"] = rows
    return export
