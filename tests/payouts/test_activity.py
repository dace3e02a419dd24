"""The operator's player activity in: over HTTP and from CSV files, all or nothing, idempotent."""

import json
from decimal import Decimal

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from affiliates.models import Brand
from payouts.models import BrandApiToken, PlayerActivity, PlayerActivityRevision

pytestmark = pytest.mark.django_db
URL = "/api/v1/player-activity/"


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def brand(db):
    return Brand.objects.create(name="Lucky Spins")


@pytest.fixture
def other_brand(db):
    return Brand.objects.create(name="Other Casino")


def client_for(user=None, brand_token=None) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    if brand_token is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Brand {brand_token.key}")
    return client


def post(client, rows):
    return client.post(URL, data=json.dumps(rows), content_type="application/json")


def row(of, **overrides):
    values = {
        "brand": of.pk,
        "player_id": "P-1",
        "date": "2026-10-05",
        "product": "casino",
        "currency": "EUR",
        "bets": "1000.00",
        "wins": "800.00",
        "bonuses": "20",
        "deposits": "150.00",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def test_a_manager_sends_rows_and_they_are_stored_with_ggr_from_bets_and_wins(manager, brand):
    # given
    api = client_for(manager)
    rows = [row(brand), row(brand, product="sportsbook", bets=None, wins=None, ggr="-35.5")]

    # when
    answer = post(api, rows)

    # then
    assert answer.status_code == 200, answer.content
    assert answer.json() == {"created": 2, "revised": 0, "unchanged": 0}
    casino = PlayerActivity.objects.get(product="casino")
    assert (casino.ggr, casino.bonuses, casino.deposits, casino.taxes) == (
        Decimal("200"),
        Decimal("20"),
        Decimal("150"),
        Decimal("0"),
    )
    sports = PlayerActivity.objects.get(product="sportsbook")
    assert (sports.bets, sports.wins, sports.ggr) == (None, None, Decimal("-35.5"))


def test_sending_a_row_again_changes_nothing(manager, brand):
    api = client_for(manager)
    post(api, [row(brand)])
    before = PlayerActivity.objects.get()

    answer = post(api, [row(brand, bets="1000", bonuses="20.0000")])

    assert answer.json() == {"created": 0, "revised": 0, "unchanged": 1}
    after = PlayerActivity.objects.get()
    assert (after.revision, after.updated_at) == (1, before.updated_at)
    assert not PlayerActivityRevision.objects.exists()


def test_a_revised_row_replaces_the_earlier_one_with_an_audit_row(manager, brand):
    api = client_for(manager)
    post(api, [row(brand)])

    answer = post(api, [row(brand, wins="900.00")])

    assert answer.json() == {"created": 0, "revised": 1, "unchanged": 0}
    stored = PlayerActivity.objects.get()
    assert (stored.ggr, stored.revision) == (Decimal("100"), 2)
    audit = PlayerActivityRevision.objects.get()
    assert (audit.revision, audit.actor, audit.old["wins"], audit.new["wins"]) == (
        1,
        manager,
        "800.0000",
        "900.0000",
    )
    assert (audit.old["ggr"], audit.new["ggr"]) == ("200.0000", "100.0000")


def test_one_bad_row_refuses_the_whole_request_naming_each_bad_row(manager, brand):
    api = client_for(manager)
    rows = [
        row(brand, player_id="ok"),
        row(brand, player_id="P-2", bets="12.5x"),
        row(brand, player_id="P-3", currency="eur", date="2026-13-01"),
        row(brand, player_id="P-4", bets=None),
        row(brand, player_id="P-5", ggr="10", bets="5", wins="1"),
        row(brand, player_id="ok"),
        row(brand, player_id="P-6", wins=1.5),
        "not an object",
        row(brand, player_id="P-7", colour="red"),
        row(brand, player_id="P-8", bonuses="0.00001"),
    ]

    answer = post(api, rows)

    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"index": 1, "field": "bets", "reason": 'a decimal string, e.g. "12.50"'},
        {"index": 2, "field": "currency", "reason": "an ISO 4217 code in capitals, e.g. EUR"},
        {"index": 2, "field": "date", "reason": "a date, YYYY-MM-DD"},
        {"index": 3, "field": "bets", "reason": "bets and wins go together"},
        {"index": 4, "field": "ggr", "reason": "is not bets - wins (4.0000)"},
        {"index": 5, "field": "player_id", "reason": "the same player, date and product as row 0"},
        {"index": 6, "field": "wins", "reason": 'a decimal string, e.g. "12.50"'},
        {"index": 7, "field": "", "reason": "a row is an object of fields"},
        {"index": 8, "field": "colour", "reason": "unknown field"},
        {"index": 9, "field": "bonuses", "reason": "at most 4 decimal places"},
    ]
    assert not PlayerActivity.objects.exists()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ("{not json", 400),
        ('{"player_id": "P-1"}', 400),
        ("[]", 200),
    ],
)
def test_a_body_that_is_not_an_array_of_rows_is_a_400(manager, body, status):
    answer = client_for(manager).post(URL, data=body, content_type="application/json")
    assert answer.status_code == status


def test_more_than_ten_thousand_rows_are_refused(manager, brand):
    rows = [row(brand, player_id=f"P-{i}") for i in range(10_001)]
    answer = post(client_for(manager), rows)
    assert answer.status_code == 400
    assert "at most 10000" in answer.json()["detail"]
    assert not PlayerActivity.objects.exists()


def test_a_manager_must_name_an_existing_brand(manager, brand):
    answer = post(client_for(manager), [row(brand, brand=None), row(brand, brand=999_999)])
    assert answer.status_code == 400
    assert answer.json()["errors"] == [
        {"index": 0, "field": "brand", "reason": "required (the brand's id)"},
        {"index": 1, "field": "brand", "reason": "no brand 999999"},
    ]


def test_a_brand_token_sends_for_its_own_brand_only(brand, other_brand):
    token = BrandApiToken.objects.create(brand=brand, key="k" * 40)
    api = client_for(brand_token=token)

    mine = post(api, [row(brand, brand=None), row(brand, player_id="P-2")])
    theirs = post(api, [row(other_brand, player_id="P-3")])

    assert mine.status_code == 200, mine.content
    assert theirs.status_code == 400
    assert theirs.json()["errors"][0]["field"] == "brand"
    assert set(PlayerActivity.objects.values_list("brand_id", "player_id")) == {
        (brand.pk, "P-1"),
        (brand.pk, "P-2"),
    }


def test_affiliates_strangers_and_revoked_tokens_may_not_send(alice, brand):
    revoked = BrandApiToken.objects.create(brand=brand, key="r" * 40, active=False)
    assert post(client_for(alice.user), [row(brand)]).status_code == 403
    assert post(client_for(), [row(brand)]).status_code == 401
    assert post(client_for(brand_token=revoked), [row(brand)]).status_code == 401
    assert not PlayerActivity.objects.exists()


# --- CSV files --------------------------------------------------------------------------------

CSV = """player_id,date,product,currency,bets,wins,bonuses,deposits,note
P-1,2026-10-05,casino,EUR,1000.00,800.00,20,150.00,first
P-1,2026-10-05,sportsbook,EUR,50,80,,,
P-2,2026-10-06,casino,GBP,10,0,,10,
"""


def test_import_activity_loads_a_file_and_a_second_run_changes_nothing(brand, tmp_path, capsys):
    # given
    path = tmp_path / "activity-2026-10-06.csv"
    path.write_text(CSV, encoding="utf-8")

    # when
    call_command("import_activity", str(path), "--brand", str(brand.pk))
    first = capsys.readouterr()
    call_command("import_activity", str(path), "--brand", str(brand.pk))
    second = capsys.readouterr()

    # then
    assert "3 created, 0 revised, 0 unchanged." in first.out
    assert "column 'note' is not read" in first.err
    assert "0 created, 0 revised, 3 unchanged." in second.out
    sports = PlayerActivity.objects.get(product="sportsbook")
    assert (sports.ggr, sports.bonuses) == (Decimal("-30"), Decimal("0"))
    assert PlayerActivity.objects.get(player_id="P-2").currency == "GBP"


def test_import_activity_stores_nothing_when_any_row_of_any_file_is_bad(brand, tmp_path, capsys):
    good = tmp_path / "good.csv"
    good.write_text(CSV, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(CSV.replace("P-2,2026-10-06", "P-2,2026-10-32"), encoding="utf-8")

    with pytest.raises(CommandError, match="1 error"):
        call_command("import_activity", str(good), str(bad), "--brand", str(brand.pk))

    assert f"{bad}:4: date: a date, YYYY-MM-DD" in capsys.readouterr().err
    assert not PlayerActivity.objects.exists()


def test_import_activity_dry_run_stores_nothing(brand, tmp_path, capsys):
    path = tmp_path / "a.csv"
    path.write_text(CSV, encoding="utf-8")
    call_command("import_activity", str(path), "--brand", str(brand.pk), "--dry-run")
    assert "Dry run" in capsys.readouterr().out
    assert not PlayerActivity.objects.exists()
