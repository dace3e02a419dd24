"""Geo rules (issue 17, point 3): a campaign takes visitors from the countries it names; the
others go to its fallback URL, their clicks are recorded with their country, and nothing they
bring is paid. The country is the CDN's header (Cloudflare's CF-IPCountry by default).
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from attribution.models import Click, Conversion
from attribution.models.conversions import public_reason
from payouts.models import LedgerEntry
from tests.attribution.test_crediting import IPHONE, T0, af_install
from tests.factories import CampaignFactory, TrackingLinkFactory
from tests.payouts.helpers import plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def dach(app):
    campaign = CampaignFactory(
        brand=app.brand,
        ios_app=app,
        ios_url="https://apps.apple.com/app/id1234567890?c={click_id}",
        countries="DE, AT, CH",
        fallback_url="https://casino.example/row?c={click_id}",
    )
    plan(campaign, cpa={"install": "2.50"})
    return campaign


def visit(client, link, country: str | None):
    headers = {"HTTP_USER_AGENT": IPHONE}
    if country is not None:
        headers["HTTP_CF_IPCOUNTRY"] = country
    return client.get(f"/c/{link.code}", **headers)


@pytest.mark.parametrize(
    ("country", "goes_to"),
    [
        ("DE", "https://apps.apple.com/app/id1234567890?c="),
        ("at", "https://apps.apple.com/app/id1234567890?c="),  # headers come in any case
        ("FR", "https://casino.example/row?c="),
        ("US", "https://casino.example/row?c="),
        (None, "https://apps.apple.com/app/id1234567890?c="),  # no CDN header: not refused
    ],
)
def test_visitors_from_other_countries_go_to_the_fallback_and_are_recorded_as_such(
    client, alice, dach, country, goes_to
):
    link = TrackingLinkFactory(affiliate=alice, campaign=dach)

    answer = visit(client, link, country)

    assert answer.status_code == 302
    stored = Click.objects.get()
    assert answer["Location"] == goes_to + stored.click_id
    assert stored.country == (country or "").upper()


def test_an_install_from_a_refused_country_is_never_paid(client, alice, dach, appsflyer):
    link = TrackingLinkFactory(affiliate=alice, campaign=dach)
    visit(client, link, "DE")
    visit(client, link, "FR")
    german, french = Click.objects.get(country="DE"), Click.objects.get(country="FR")
    Click.objects.update(created_at=T0)

    paid = af_install(
        client, appsflyer, at=T0 + timedelta(hours=1), click_id=german.click_id, afid="af-de"
    )
    refused = af_install(
        client,
        appsflyer,
        at=T0 + timedelta(hours=1),
        click_id=french.click_id,
        afid="af-fr",
        idfa="6D92078A-8246-4BA4-AE5B-76104861E7DC",
    )

    assert (paid.status, paid.reason, paid.affiliate) == ("approved", "ok", alice)
    assert (refused.status, refused.reason, refused.affiliate) == ("rejected", "outside_geo", alice)
    assert public_reason(refused.status, refused.reason) == "outside_geo"
    entries = LedgerEntry.objects.exclude(status="void")
    assert [(e.conversion_id, e.amount) for e in entries] == [(paid.pk, Decimal("2.50"))]


def test_without_countries_a_campaign_takes_everyone(client, alice, campaign):
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)

    answer = visit(client, link, "BR")

    assert answer.status_code == 302 and not answer["Location"].startswith(
        "https://casino.example/row"
    )
    assert Click.objects.get().country == "BR"


def test_the_country_list_is_checked_and_tidied(dach):
    dach.countries = "de; at ,ch, DE"
    dach.full_clean()
    assert dach.countries == "DE, AT, CH"

    dach.countries = "Germany, XX1"
    with pytest.raises(ValidationError, match="Not ISO country codes: GERMANY, XX1"):
        dach.full_clean()
    assert Conversion.objects.count() == 0
