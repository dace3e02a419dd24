"""Isolation of the affiliate's pages (issue 17): another affiliate, signed in, reaches none of
alice's offers terms, caps, payment details, invoices, access requests or settings, by page,
guessed id or token; and the same pages do show them to alice (the matrix is not vacuous)."""

from datetime import date

import pytest
from django.core.files.base import ContentFile
from django.test import Client

from affiliates import offers, profile
from affiliates.models import Campaign, CampaignAccess, Creative, PaymentDetailsChange
from payouts import invoices
from payouts.models import Cap, CapUsage, Payout
from tests.factories import CampaignFactory

pytestmark = pytest.mark.django_db

IBAN = "DE89370400440532013000"  # ECBS's published example IBAN


@pytest.fixture
def pages(world):
    """What alice has beyond the API world: payment details waiting for her mailed link, an
    access request with her words, a creative on her private offer, a cap of her own with its
    count, a time zone change, and the invoice of her payout."""
    alice = world.alice
    change = profile.payment_change_request(
        affiliate=alice,
        details={
            "method": "bank",
            "account_name": "Alice Media Ltd",
            "iban": IBAN,
            "bic": "DEUTDEFF",
        },
        confirm_url="https://portal.example/dashboard/profile/payment/{token}/",
        actor=alice.user,
    )
    gated = CampaignFactory(
        brand=world.campaign.brand, name="Gated", visibility=Campaign.Visibility.APPROVAL
    )
    offers.access_request(affiliate=alice, campaign=gated, message="ALICE-TRAFFIC-SECRET")
    private = CampaignAccess.objects.get(affiliate=alice, status="approved").campaign
    creative = Creative.objects.create(campaign=private, kind="banner", name="ALICE-BANNER")
    creative.file.save("alice.png", ContentFile(b"\x89PNG alice"), save=True)
    cap = Cap.objects.create(campaign=world.campaign, affiliate=alice, limit=13, action="unpaid")
    CapUsage.objects.create(cap=cap, period_start=date(2026, 12, 4), ends_at="2999-01-01T00:00Z",
                            conversions=11)  # fmt: skip
    profile.settings_change_request(
        affiliate=alice, changes={"time_zone": "Pacific/Chatham"}, actor=alice.user
    )
    Payout.objects.filter(pk=world.payout.pk).update(status="paid")
    world.payout.refresh_from_db()
    invoice = invoices.invoice_issue(payout=world.payout)
    world.token = change.token
    world.creative = creative
    world.gated = gated
    world.page_secrets = [
        IBAN,
        "ALICE-TRAFFIC-SECRET",
        "ALICE-BANNER",
        "11 of 13",
        "<td>Pacific/Chatham</td>",  # her waiting change (every zone is in the form's list)
        invoice.number,
        "777.77",
        "Alice's private offer",
    ]
    return world


# (name, method, url); {payout}, {token}, {creative}, {gated} filled in.
PAGES = [
    ("offers", "get", "/dashboard/offers/"),
    ("profile", "get", "/dashboard/profile/"),
    ("payouts", "get", "/dashboard/payouts/"),
    ("alice's invoice", "get", "/payouts/{payout}/invoice.pdf"),
    ("alice's payment link", "get", "/dashboard/profile/payment/{token}/"),
    ("confirm alice's payment link", "post", "/dashboard/profile/payment/{token}/"),
    ("alice's creative", "get", "/dashboard/creatives/{creative}/"),
    ("two-factor", "get", "/dashboard/profile/two-factor/"),
    ("ask for the gated offer", "post", "/dashboard/offers/{gated}/request/"),
    ("offers API", "get", "/api/v1/offers/"),
    ("ask through the API", "post", "/api/v1/offers/{gated}/request/"),
]


def fill(url: str, world) -> str:
    return url.format(
        payout=world.payout.pk, token=world.token, creative=world.creative.pk, gated=world.gated.pk
    )


@pytest.mark.parametrize("viewer", ["charlie", "bob"])
@pytest.mark.parametrize(("name", "method", "url"), PAGES, ids=[p[0] for p in PAGES])
def test_another_affiliate_reaches_nothing_of_alices_on_the_pages(
    request, pages, viewer, name, method, url
):
    # given another affiliate (a stranger, or alice's own sub-affiliate), signed in
    client = Client()
    client.force_login(request.getfixturevalue(viewer).user)

    # when it asks for alice's things by page, id or token
    response = getattr(client, method)(fill(url, pages), follow=True)

    # then it gets its own page, a refusal or a 404: never a byte of hers
    # (201: its own access request, made through the API)
    assert response.status_code in (200, 201, 400, 403, 404), response.status_code
    text = response.content.decode(errors="replace")
    for secret in pages.page_secrets:
        assert secret not in text, (name, secret)
    change = PaymentDetailsChange.objects.get(token=pages.token)
    assert change.status == PaymentDetailsChange.Status.AWAITING_EMAIL
    pages.alice.refresh_from_db()
    assert IBAN not in pages.alice.payment_details
    assert CampaignAccess.objects.get(affiliate=pages.alice, campaign=pages.gated).message == (
        "ALICE-TRAFFIC-SECRET"
    )


def test_alice_reaches_them_on_the_same_pages(pages):
    client = Client()
    client.force_login(pages.alice.user)

    profile_page = client.get("/dashboard/profile/").content.decode()
    assert "Alice Media Ltd" in profile_page and "<td>Pacific/Chatham</td>" in profile_page
    offers_page = client.get("/dashboard/offers/").content.decode()
    assert "777.77" in offers_page and "11 of 13" in offers_page
    assert "Alice&#x27;s private offer" in offers_page or "Alice's private offer" in offers_page
    invoice = client.get(f"/payouts/{pages.payout.pk}/invoice.pdf")
    assert invoice.status_code == 200 and invoice["Content-Type"] == "application/pdf"
    creative = client.get(f"/dashboard/creatives/{pages.creative.pk}/")
    assert creative.status_code == 200
    assert b"".join(creative.streaming_content) == b"\x89PNG alice"
