"""Admin > Player activity > Upload: a CSV checked, dry run by default, per-row errors."""

import re
from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from affiliates.models import Brand
from payouts.models import BrandApiToken, PlayerActivity

pytestmark = pytest.mark.django_db
CSV = b"""player_id,date,product,currency,bets,wins,deposits
P-1,2026-10-05,casino,EUR,100,60,50
P-2,2026-10-05,sportsbook,EUR,10,30,
"""


@pytest.fixture
def brand(db):
    return Brand.objects.create(name="Lucky Spins")


def upload(client, brand, content: bytes, **form):
    return client.post(
        reverse("admin:payouts_playeractivity_upload"),
        {"file": SimpleUploadedFile("a.csv", content, "text/csv"), "brand": brand.pk, **form},
    )


def test_the_upload_form_has_dry_run_ticked(manager_client):
    page = manager_client.get(reverse("admin:payouts_playeractivity_upload"))
    assert page.status_code == 200
    assert re.search(r'<input type="checkbox" name="dry_run"[^>]* checked', page.content.decode())
    changelist = manager_client.get(reverse("admin:payouts_playeractivity_changelist"))
    assert reverse("admin:payouts_playeractivity_upload") in changelist.content.decode()


def test_a_dry_run_says_what_would_happen_and_stores_nothing(manager_client, brand):
    page = upload(manager_client, brand, CSV, dry_run="on")
    assert "would give 2 created, 0 revised, 0 unchanged" in page.content.decode()
    assert not PlayerActivity.objects.exists()


def test_an_upload_stores_the_rows_and_a_second_one_changes_nothing(manager_client, brand):
    first = upload(manager_client, brand, CSV)
    second = upload(manager_client, brand, CSV)
    assert "Stored: 2 created, 0 revised, 0 unchanged" in first.content.decode()
    assert "Stored: 0 created, 0 revised, 2 unchanged" in second.content.decode()
    assert PlayerActivity.objects.get(player_id="P-2").ggr == Decimal("-20")


def test_bad_rows_are_listed_by_line_and_column_and_nothing_is_stored(manager_client, brand):
    bad = CSV + b"P-3,2026-10-05,casino,euro,1,0,\nP-4,yesterday,casino,EUR,1,0,\n"
    page = upload(manager_client, brand, bad).content.decode()
    assert "2 error(s) in 4 row(s): nothing was stored." in page
    assert "<td>4</td><td>currency</td>" in page
    assert "<td>5</td><td>date</td><td>a date, YYYY-MM-DD</td>" in page
    assert not PlayerActivity.objects.exists()


def test_a_file_that_is_not_utf8_is_a_clear_error(manager_client, brand):
    page = upload(manager_client, brand, "player_id\n\xe9t\xe9\n".encode("latin-1"))
    assert "not UTF-8" in page.content.decode()


def test_a_brand_token_gets_a_key_when_created_in_the_admin(manager_client, brand):
    manager_client.post(
        reverse("admin:payouts_brandapitoken_add"), {"brand": brand.pk, "name": "platform"}
    )
    token = BrandApiToken.objects.get()
    assert len(token.key) >= 40
