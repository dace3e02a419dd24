"""Moving a program in: import_program (command and admin upload), all or nothing, idempotent."""

import csv
from collections import Counter
from datetime import datetime, timedelta
from decimal import Decimal
from io import StringIO
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models import Sum
from django.urls import path
from django.utils import timezone

from affiliates.admin_import import import_program_view
from affiliates.importing import program_import
from affiliates.models import (
    Affiliate,
    AuditEvent,
    Brand,
    Campaign,
    CampaignAccess,
    LegacyLink,
    TrackingLink,
)
from attribution.models import (
    Click,
    Conversion,
    DailyRollup,
    HourlyRollup,
    Identity,
    Postback,
    PostbackEvent,
    SubRollup,
)
from attribution.processing import single
from payouts.models import LedgerEntry
from portal import urls as portal_urls
from tests.affiliates.program_export import Export, generate
from tests.conftest import staff_login

pytestmark = pytest.mark.django_db

# The admin upload's route, as portal/urls.py is to have it (see affiliates/admin_import.py).
urlpatterns = [
    path("admin/import/", admin.site.admin_view(import_program_view), name="admin-import"),
    *portal_urls.urlpatterns,
]

NOW = timezone.now()
TABLES = (
    get_user_model(),
    Affiliate,
    Brand,
    Campaign,
    TrackingLink,
    LegacyLink,
    Click,
    Postback,
    PostbackEvent,
    Conversion,
    Identity,
    AuditEvent,
    DailyRollup,
    HourlyRollup,
    SubRollup,
    LedgerEntry,
)
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148"


@pytest.fixture(scope="module")
def export(tmp_path_factory) -> Export:
    """Hundreds of affiliates (a quarter of them sub-affiliates), thousands of links, a month of
    clicks and some conversions: generated once, seeded."""
    made = generate(tmp_path_factory.mktemp("export"), now=NOW, clicks=24_000, conversions=600)
    made.write()
    return made


def counts() -> dict[str, int]:
    return {model.__name__: model.objects.count() for model in TABLES}


def run(export: Export, *args: str) -> str:
    out = StringIO()
    call_command("import_program", "--dir", str(export.directory), *args, stdout=out)
    return out.getvalue()


def test_the_import_creates_the_program_and_a_second_run_changes_nothing(export, tmp_path):
    before = counts()

    out = run(export)

    after = counts()
    rows = export.rows
    added = {name: after[name] - before[name] for name in after}
    assert added["User"] == added["Affiliate"] == export.count("affiliates") == 300
    assert added["Brand"] == 3
    assert added["Campaign"] == export.count("campaigns")
    assert added["TrackingLink"] == export.count("links") == 3000
    assert added["LegacyLink"] == len(export.legacy_links) > 300
    assert added["Click"] == export.count("clicks") == 24_000
    assert added["Postback"] == added["PostbackEvent"] == added["Conversion"] == 600
    assert added["LedgerEntry"] == 0  # history was paid on the old platform
    rows_total = 300 + 3 + export.count("campaigns") + 3000 + added["LegacyLink"] + 24_000 + 600
    assert f"total         {rows_total} created, 0 updated, 0 unchanged" in out

    # Affiliates keep their status, parent, time zone and sign-up date; passwords are unusable.
    imported = Affiliate.objects.filter(user__username__in=export.usernames.values())
    assert Counter(imported.values_list("status", flat=True)) == Counter(
        a["status"] for a in rows["affiliates"]
    )
    subs = [a for a in rows["affiliates"] if a["parent_external_id"]]
    assert len(subs) > 40
    assert imported.filter(parent__isnull=False).count() == len(subs)
    for row in subs[:20]:
        affiliate = Affiliate.objects.select_related("parent__user").get(
            user__username=row["username"]
        )
        assert affiliate.parent.user.username == export.usernames[row["parent_external_id"]]
        assert affiliate.time_zone == row["time_zone"]
        assert affiliate.created_at == datetime.fromisoformat(row["created_at"])
    assert not any(
        u.has_usable_password()
        for u in get_user_model().objects.filter(username__in=export.usernames.values())
    )

    # Links keep their old codes, clicks their old ids.
    link = rows["links"][0]
    made = TrackingLink.objects.select_related("affiliate__user").get(code=link["code"])
    assert made.affiliate.user.username == export.usernames[link["affiliate_external_id"]]
    click = rows["clicks"][123]
    kept = Click.objects.get(click_id=click["click_id"])
    assert kept.link.code == click["link_code"]
    assert kept.created_at == datetime.fromisoformat(click["created_at"])

    # Conversions: manual, the file's status, reason ok, claimed once, no ledger.
    conversions = Conversion.objects.filter(claim_key__startswith="import:")
    assert conversions.count() == 600
    assert set(conversions.values_list("method", "reason")) == {("manual", "ok")}
    assert not conversions.filter(ledger_synced=False).exists()
    by_status = Counter(c["status"] for c in rows["conversions"])
    assert Counter(conversions.values_list("status", flat=True)) == by_status
    one = rows["conversions"][0]
    conversion = Conversion.objects.get(claim_key=f"import:{one['external_id']}")
    assert conversion.event.postback.kind == "import"
    assert conversion.event.postback.status == "processed"
    assert '"external_id": "' + one["external_id"] in conversion.event.postback.body

    # The rollups count every imported click and conversion.
    totals = DailyRollup.objects.aggregate(
        clicks=Sum("clicks"), ftds=Sum("ftds"), registrations=Sum("registrations")
    )
    counted = Counter(
        c["type"] for c in rows["conversions"] if c["status"] in ("approved", "pending")
    )
    assert totals == {
        "clicks": 24_000,
        "ftds": counted["ftd"],
        "registrations": counted["registration"],
    }
    deposits = sum(
        Decimal(c["revenue"])
        for c in rows["conversions"]
        if c["type"] in ("ftd", "deposit") and c["status"] in ("approved", "pending")
    )
    assert DailyRollup.objects.aggregate(s=Sum("deposit_amount"))["s"] == deposits
    assert HourlyRollup.objects.aggregate(s=Sum("clicks"))["s"] == 24_000
    rejected = DailyRollup.objects.aggregate(s=Sum("rejected"))["s"]
    assert rejected == Counter(c["status"] for c in rows["conversions"])["rejected"]

    # A second run of the same files changes nothing.
    again = run(export)
    assert counts() == after
    assert f"total         0 created, 0 updated, {rows_total} unchanged" in again
    assert "0 created, 0 updated, 24000 unchanged" in again

    # A changed export updates what changed, and only that; the rollups follow.
    rows = {name: [dict(r) for r in export.rows[name]] for name in export.rows}
    affiliate = next(a for a in rows["affiliates"] if a["status"] == "active")
    affiliate["status"] = "suspended"
    ftd = next(c for c in rows["conversions"] if c["type"] == "ftd" and c["status"] == "approved")
    ftd["status"] = "rejected"
    changed = Export(tmp_path / "changed", rows)
    changed.write()

    report = program_import(directory=changed.directory)

    assert report.applied, report
    assert (report.tallies["affiliates"].updated, report.tallies["conversions"].updated) == (1, 1)
    assert (report.total.created, report.total.updated) == (0, 2)
    assert Affiliate.objects.get(user__username=affiliate["username"]).status == "suspended"
    conversion = Conversion.objects.get(claim_key=f"import:{ftd['external_id']}")
    assert conversion.status == "rejected"
    assert DailyRollup.objects.aggregate(s=Sum("ftds"))["s"] == totals["ftds"] - 1
    assert DailyRollup.objects.aggregate(s=Sum("rejected"))["s"] == rejected + 1
    assert AuditEvent.objects.filter(object_id=str(conversion.pk), field="import").exists()


def _live(export: Export, style: str) -> dict:
    """A legacy link of ``style`` whose affiliate and campaign can send traffic."""
    active = {a["external_id"] for a in export.rows["affiliates"] if a["status"] == "active"}
    running = {c["external_id"] for c in export.rows["campaigns"] if c["status"] == "active"}
    return next(
        link
        for link in export.legacy_links
        if f"/{style}" in link["legacy_url"]
        and link["affiliate_external_id"] in active
        and link["campaign_external_id"] in running
    )


def test_old_click_ids_and_old_links_keep_working(client, export, appsflyer, s2s):
    program_import(directory=export.directory)

    # An MMP postback carrying an imported click id credits that click's affiliate.
    click = export.rows["clicks"][4321]
    link = export.links[click["link_code"]]
    clicked = datetime.fromisoformat(click["created_at"])
    params = {
        "appsflyer_id": "af-imported-1",
        "app_id": "id1234567890",
        "platform": "ios",
        "install_unix_ts": int((clicked + timedelta(hours=2)).timestamp()),
        "clickid": click["click_id"],
    }

    response = client.get(f"/postbacks/appsflyer/{appsflyer.token}/?{urlencode(params)}")
    assert response.status_code == 200, response.content
    single.postback_process(postback_id=response.json()["id"])

    conversion = Conversion.objects.select_related("affiliate__user", "click").get(
        event__postback_id=response.json()["id"]
    )
    assert conversion.affiliate.user.username == export.usernames[link["affiliate_external_id"]]
    assert conversion.click.click_id == click["click_id"]
    assert (conversion.method, conversion.type, conversion.status) == (
        "click_id",
        "install",
        "approved",
    )

    # The operator's later deposits of an imported player chain to the player's affiliate.
    brand = {c["external_id"]: c["brand"] for c in export.rows["campaigns"]}
    registration = next(
        c
        for c in export.rows["conversions"]
        if c["type"] == "registration"
        and c["status"] == "approved"
        and c["affiliate_external_id"]
        and brand[c["campaign_external_id"]] == s2s.brand.name
    )
    params = {"event": "deposit", "txid": "t-1", "amount": "50", "currency": "EUR"}
    params["timestamp"] = int(NOW.timestamp())
    params["player_id"] = registration["player_id"]
    response = client.get(f"/postbacks/s2s/{s2s.token}/?{urlencode(params)}")
    assert response.status_code == 200, response.content
    single.postback_process(postback_id=response.json()["id"])
    deposit = Conversion.objects.get(event__postback_id=response.json()["id"])
    assert (
        deposit.affiliate.user.username == export.usernames[registration["affiliate_external_id"]]
    )
    assert deposit.method == "install_chain"

    # Old links: the legacy paths lead to /c/<old code> with the sub ids mapped.
    affise, tune, cake = _live(export, "click?"), _live(export, "aff_c?"), _live(export, "go/?")

    def old(link: dict, **extra: str) -> str:
        """The old link as a visitor follows it: its identifying parameters, new sub ids."""
        parts = urlsplit(link["legacy_url"])
        kept = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("sub1", "aff_sub", "s1")]
        return f"{parts.path}?{urlencode(kept + list(extra.items()))}"

    # Affise: /click?pid=&offer_id= with sub1..sub8 and a click id of an ad network.
    response = client.get(old(affise, sub1="fb", sub2="adset 7", sub7="dropped", clickid="x1"))
    assert response.status_code == 302
    assert response["Location"] == f"/c/{affise['code']}?sub1=fb&sub2=adset+7"
    # TUNE: /aff_c?offer_id=&aff_id= with aff_sub..aff_sub5, an advertising id passed on.
    gaid = "38400000-8cf0-11bd-b23e-10b96e40000d"
    response = client.get(old(tune, aff_sub="tw", aff_sub3="z", google_aid=gaid))
    assert response["Location"] == f"/c/{tune['code']}?sub1=tw&sub3=z&gaid={gaid}"
    # CAKE-style: /go/?a=&c= with s1..s5, and a parameter added on the way (&ref=).
    response = client.get(old(cake, s1="q", s2="r", ref="newsletter"))
    assert response["Location"] == f"/c/{cake['code']}?sub1=q&sub2=r"

    # ... and /c/<old code> records the click with the sub ids.
    followed = client.get(f"/c/{affise['code']}?sub1=fb&sub2=adset+7", HTTP_USER_AGENT=IPHONE)
    assert followed.status_code == 302
    latest = Click.objects.latest("pk")
    assert (latest.link.code, latest.sub1, latest.sub2) == (affise["code"], "fb", "adset 7")

    # Unknown old links are a clear 404, like /c/.
    for url in ("/click?pid=999999&offer_id=1", "/aff_c", "/go?s1=only-subs"):
        missing = client.get(url)
        assert missing.status_code == 404
        assert b"This link is not active" in missing.content


def test_links_brought_onto_a_gated_campaign_keep_their_traffic(export):
    # given: the program already has one of the export's campaigns, open on approval only
    row = next(r for r in export.rows["campaigns"] if r["status"] == "active")
    gated = Campaign.objects.create(
        brand=Brand.objects.create(name=row["brand"]),
        name=row["name"],
        web_url=row["web_url"],
        visibility=Campaign.Visibility.APPROVAL,
    )

    run(export)

    # then: every affiliate the import gave a link there may send traffic to it
    linked = set(TrackingLink.objects.filter(campaign=gated).values_list("affiliate_id", flat=True))
    granted = set(
        CampaignAccess.objects.filter(campaign=gated, status="approved").values_list(
            "affiliate_id", flat=True
        )
    )
    assert linked and granted == linked


def test_a_dry_run_changes_nothing(export):
    before = counts()
    out = run(export, "--dry-run")
    assert counts() == before
    assert "24000 created, 0 updated, 0 unchanged" in out
    assert "Dry run: nothing was changed" in out


BAD_ROWS = {
    "affiliates": [
        # (column it is refused on, the row)
        (
            "parent_external_id",
            {
                "external_id": "X1",
                "username": "x1",
                "email": "x1@x.example",
                "name": "X1",
                "status": "active",
                "parent_external_id": "NOPE",
            },
        ),
        (
            "time_zone",
            {
                "external_id": "X2",
                "username": "x2",
                "email": "x2@x.example",
                "name": "X2",
                "status": "active",
                "time_zone": "Mars/Olympus",
            },
        ),
        (
            "external_id",
            {
                "external_id": "AF00001",
                "username": "x3",
                "email": "x3@x.example",
                "name": "X3",
                "status": "active",
            },
        ),
        (
            "status",
            {
                "external_id": "X4",
                "username": "x4",
                "email": "x4@x.example",
                "name": "X4",
                "status": "banned",
            },
        ),
        (
            "email",
            {
                "external_id": "X5",
                "username": "x5",
                "email": "not-an-email",
                "name": "X5",
                "status": "active",
            },
        ),
        # A loop: each is the other's parent.
        (
            "parent_external_id",
            {
                "external_id": "X6",
                "username": "x6",
                "email": "x6@x.example",
                "name": "X6",
                "status": "active",
                "parent_external_id": "X7",
            },
        ),
        (
            "parent_external_id",
            {
                "external_id": "X7",
                "username": "x7",
                "email": "x7@x.example",
                "name": "X7",
                "status": "active",
                "parent_external_id": "X6",
            },
        ),
    ],
    "campaigns": [
        ("web_url", {"external_id": "C1", "brand": "B", "name": "bad url", "web_url": "htp:/x"}),
        (
            "click_lookback_days",
            {
                "external_id": "C2",
                "brand": "B",
                "name": "n2",
                "web_url": "https://b.example/",
                "click_lookback_days": "many",
            },
        ),
    ],
    "links": [
        (
            "affiliate_external_id",
            {"code": "newcode1", "affiliate_external_id": "GHOST", "campaign_external_id": "101"},
        ),
        (
            "legacy_url",
            {
                "code": "newcode2",
                "affiliate_external_id": "AF00001",
                "campaign_external_id": "101",
                "legacy_url": "https://old.example/click?sub1=x&clickid=y",
            },
        ),
        (
            "code",
            {
                "code": "has space",
                "affiliate_external_id": "AF00001",
                "campaign_external_id": "101",
            },
        ),
    ],
    "clicks": [
        ("created_at", {"click_id": "c-bad-date", "link_code": "LINK", "created_at": "yesterday"}),
        (
            "link_code",
            {
                "click_id": "c-bad-link",
                "link_code": "no-such-code",
                "created_at": "2026-01-01T00:00:00Z",
            },
        ),
        (
            "click_id",
            {"click_id": "z" * 70, "link_code": "LINK", "created_at": "2026-01-01T00:00:00Z"},
        ),
        (
            "ip",
            {
                "click_id": "c-bad-ip",
                "link_code": "LINK",
                "created_at": "2026-01-01T00:00:00Z",
                "ip": "300.1.2.3",
            },
        ),
    ],
    "conversions": [
        (
            "status",
            {
                "external_id": "V1",
                "affiliate_external_id": "AF00001",
                "campaign_external_id": "101",
                "type": "ftd",
                "occurred_at": "2026-01-01T00:00:00Z",
                "status": "paid",
            },
        ),
        (
            "click_id",
            {
                "external_id": "V2",
                "click_id": "never-seen",
                "type": "registration",
                "occurred_at": "2026-01-01T00:00:00Z",
            },
        ),
        (
            "revenue",
            {
                "external_id": "V3",
                "affiliate_external_id": "AF00001",
                "campaign_external_id": "101",
                "type": "deposit",
                "occurred_at": "2026-01-01T00:00:00Z",
                "revenue": "12,50",
                "currency": "EUR",
            },
        ),
    ],
}


def test_a_malformed_export_is_refused_row_by_row_and_nothing_is_imported(export, tmp_path):
    code = export.rows["links"][0]["code"]
    extra = {
        name: [{k: (code if v == "LINK" else v) for k, v in row.items()} for _, row in bad]
        for name, bad in BAD_ROWS.items()
    }
    folder = export.write(tmp_path / "malformed", extra=extra)
    expected = {
        (f"{name}.csv", export.count(name) + 2 + i, column)
        for name, bad in BAD_ROWS.items()
        for i, (column, _) in enumerate(bad)
    }
    before = counts()

    report = program_import(directory=folder)

    assert {(r.file, r.line, r.column) for r in report.refusals} == expected
    assert not report.applied
    assert counts() == before
    text = str(report)
    for fragment in (
        "unknown parent 'NOPE'",
        "the parent chain loops: X6 -> X7 -> X6",
        "'Mars/Olympus' is not a known time zone",
        "duplicate external_id 'AF00001' (first on line 2)",
        "'banned' is not one of",
        "'htp:/x' is not a valid http(s) URL",
        "unknown affiliate 'GHOST'",
        "has no identifying parameters",
        "'yesterday' is not an ISO 8601 date and time",
        "unknown link_code 'no-such-code'",
        "is 70 characters long; at most 64",
        "'300.1.2.3' is not an IP address",
        "'paid' is not one of",
        "unknown click_id 'never-seen'",
        "'12,50' is not a number",
        f"{len(expected)} row(s) refused; nothing was imported",
    ):
        assert fragment in text, fragment
    line = export.count("affiliates") + 2
    assert f"affiliates.csv line {line}, column parent_external_id: unknown parent" in text

    # The command says the same and fails.
    out = StringIO()
    with pytest.raises(CommandError, match=f"{len(expected)} row"):
        call_command("import_program", "--dir", str(folder), stdout=out)
    assert "clicks.csv line" in out.getvalue()
    assert counts() == before


def test_missing_columns_and_files_are_refused(tmp_path):
    folder = tmp_path / "partial"
    _write(folder, "links", [["code", "campaign_external_id"], ["abc", "1"]])
    report = program_import(directory=folder)
    assert [str(r) for r in report.refusals] == [
        "links.csv line 1, column affiliate_external_id: required column is missing from the header"
    ]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert "no import files" in str(program_import(directory=empty))


def _write(folder, name: str, rows: list[list[str]]) -> None:
    folder.mkdir(exist_ok=True)
    with (folder / f"{name}.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)


def test_a_small_export_with_a_legacy_path_that_is_not_routed(tmp_path, client):
    folder = tmp_path / "small"
    _write(
        folder,
        "affiliates",
        [
            ["external_id", "username", "email", "name", "status", "parent_external_id"],
            ["1", "top", "top@x.example", "Top", "active", ""],
            ["2", "sub", "sub@x.example", "Sub", "pending", "1"],
        ],
    )
    _write(
        folder,
        "campaigns",
        [["external_id", "brand", "name", "web_url"], ["9", "Acme", "Main", "https://a.example/"]],
    )
    _write(
        folder,
        "links",
        [
            ["code", "affiliate_external_id", "campaign_external_id", "legacy_url"],
            ["old-1", "1", "9", "https://t.example/track?offer=9&aff=1&utm_source=x"],
            ["old-2", "1", "9", "https://t.example/go?offer=9&aff=1"],
        ],
    )

    report = program_import(directory=folder)

    assert report.applied, report
    assert any("path /track that does not reach the legacy redirect" in w for w in report.warnings)
    assert LegacyLink.objects.get(link__code="old-1").key == "aff=1&offer=9"
    assert Affiliate.objects.get(user__username="sub").parent.user.username == "top"
    assert client.get("/go?aff=1&offer=9&sub1=a")["Location"] == "/c/old-2?sub1=a"
    assert client.get("/c/old-1").status_code == 302


@pytest.mark.urls(__name__)
def test_the_admin_upload_imports_the_same_files(client, manager, export, tmp_path):
    page = client.get("/admin/import/")
    assert page.status_code == 302  # managers only, through the admin's login

    staff_login(client, manager)
    assert client.get("/admin/import/").status_code == 200
    before = counts()

    def upload(dry_run: bool):
        files = {n: (export.directory / f"{n}.csv").open("rb") for n in export.rows}
        try:
            data = {**files, **({"dry_run": "on"} if dry_run else {})}
            return client.post("/admin/import/", data)
        finally:
            for handle in files.values():
                handle.close()

    dry = upload(dry_run=True)
    assert dry.status_code == 200
    assert b"Dry run: nothing was changed" in dry.content
    assert counts() == before

    done = upload(dry_run=False)
    assert done.status_code == 200
    assert b"Imported: " in done.content
    assert Affiliate.objects.count() - before["Affiliate"] == 300
    assert Click.objects.count() - before["Click"] == 24_000
    assert Conversion.objects.count() - before["Conversion"] == 600
    assert AuditEvent.objects.filter(actor=manager, note__contains="uploaded files").exists()

    # A refused upload lists its rows and imports nothing.
    bad = tmp_path / "clicks.csv"
    code = export.rows["links"][0]["code"]
    with bad.open("w", newline="") as handle:
        csv.writer(handle).writerows(
            [
                ["click_id", "link_code", "created_at"],
                ["new-click-1", code, "2026-01-01T00:00:00Z"],
                ["new-click-2", "nope", "2026-01-01T00:00:00Z"],
            ]
        )
    with bad.open("rb") as handle:
        refused = client.post("/admin/import/", {"clicks": handle})
    assert b"1 row(s) refused: nothing was imported" in refused.content
    assert b"unknown link_code" in refused.content
    assert not Click.objects.filter(click_id="new-click-1").exists()
