"""Sign-up asks what programs ask (issue 17, point 6): where the traffic comes from, country,
messenger, company and VAT id, and acceptance of the current terms, which a new version asks
for again at the next visit."""

from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from affiliates.models import Affiliate, TermsAcceptance, TermsVersion

pytestmark = pytest.mark.django_db

APPLICATION = {
    "username": "newbie",
    "email": "new@example.com",
    "password1": "a-Long-passw0rd!",
    "password2": "a-Long-passw0rd!",
    "name": "Newbie Media",
    "time_zone": "Europe/Malta",
    "currency": "EUR",
    "website": "https://reviews.example",
    "traffic_sources": "SEO in German, a newsletter of 12k",
    "country": "de",
    "messenger": "Telegram @newbie",
    "company": "Newbie Media GmbH",
    "vat_id": "DE811907980",
}


@pytest.fixture
def terms_v1():
    return TermsVersion.objects.create(
        version=1, text="No brand bidding.", published_at=datetime(2026, 1, 1, tzinfo=UTC)
    )


def test_the_application_keeps_what_the_program_asked(client, terms_v1):
    answer = client.post(
        reverse("signup"), {**APPLICATION, "accept_terms": "on"}, REMOTE_ADDR="203.0.113.9"
    )

    assert answer.status_code == 302
    newbie = Affiliate.objects.get(user__username="newbie")
    assert (newbie.website, newbie.country, newbie.messenger) == (
        "https://reviews.example",
        "DE",
        "Telegram @newbie",
    )
    assert (newbie.company, newbie.vat_id) == ("Newbie Media GmbH", "DE811907980")
    assert newbie.traffic_sources == "SEO in German, a newsletter of 12k"
    accepted = TermsAcceptance.objects.get(user=newbie.user)
    assert (accepted.terms, accepted.ip) == (terms_v1, "203.0.113.9")


def test_without_accepting_the_terms_nobody_is_signed_up(client, terms_v1):
    answer = client.post(reverse("signup"), APPLICATION)

    assert answer.status_code == 200
    assert "accept_terms" in answer.context["form"].errors
    assert not Affiliate.objects.exists()


def test_a_website_or_traffic_sources_are_needed(client):
    answer = client.post(reverse("signup"), {**APPLICATION, "website": "", "traffic_sources": "  "})

    assert answer.status_code == 200
    assert "traffic_sources" in answer.context["form"].errors
    assert not Affiliate.objects.exists()


def test_new_terms_are_accepted_at_the_next_visit_before_anything_else(client, alice, terms_v1):
    TermsAcceptance.objects.create(user=alice.user, terms=terms_v1)
    client.force_login(alice.user)
    assert client.get(reverse("affiliate-dashboard")).status_code == 200

    # a manager publishes version 2
    TermsVersion.objects.create(
        version=2,
        text="No brand bidding. No incentivised traffic.",
        published_at=timezone.now() - timedelta(minutes=1),
    )

    # every page now asks for it first, and returns there once accepted
    held = client.get(reverse("affiliate-links"))
    assert held.status_code == 302
    assert held["Location"] == reverse("terms-accept") + "?next=%2Fdashboard%2Flinks%2F"
    page = client.get(held["Location"])
    assert b"No incentivised traffic." in page.content
    accepted = client.post(reverse("terms-accept"), {"next": "/dashboard/links/"})
    assert accepted["Location"] == "/dashboard/links/"
    assert client.get(reverse("affiliate-links")).status_code == 200
    assert list(
        TermsAcceptance.objects.filter(user=alice.user).values_list("terms__version", flat=True)
    ) == [2, 1]


def test_a_version_published_for_later_is_not_asked_for_yet(client, alice, terms_v1):
    TermsAcceptance.objects.create(user=alice.user, terms=terms_v1)
    TermsVersion.objects.create(
        version=2, text="Later.", published_at=timezone.now() + timedelta(days=7)
    )
    client.force_login(alice.user)

    assert client.get(reverse("affiliate-dashboard")).status_code == 200


def test_the_accept_page_sends_nobody_elsewhere(client, alice, terms_v1):
    client.force_login(alice.user)

    answer = client.post(reverse("terms-accept"), {"next": "https://evil.example/"})

    assert answer["Location"] == reverse("affiliate-dashboard")


def test_a_program_without_terms_asks_for_none(client, alice):
    client.force_login(alice.user)
    assert client.get(reverse("affiliate-dashboard")).status_code == 200
    answer = client.post(reverse("signup"), APPLICATION)
    assert answer.status_code == 302
    assert Affiliate.objects.filter(user__username="newbie").exists()


def test_the_api_too_waits_for_the_new_terms(client, alice, terms_v1):
    # given alice, who accepted version 1, using the API with her token
    TermsAcceptance.objects.create(user=alice.user, terms=terms_v1)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=alice.user).key}")
    assert api.get("/api/v1/links/").status_code == 200

    # when version 2 is published, the API refuses her until she accepts it
    TermsVersion.objects.create(version=2, text="v2", published_at=timezone.now())
    refused = api.get("/api/v1/links/")
    assert refused.status_code == 403
    assert "accept them at /terms/accept/" in refused.json()["detail"]

    client.force_login(alice.user)
    client.post(reverse("terms-accept"), {"next": "/dashboard/"})
    assert api.get("/api/v1/links/").status_code == 200
