from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from affiliates.models import Affiliate, Campaign, CampaignAccess
from attribution.rollups import keep
from payouts.models import Payout, PayoutRun
from payouts.reports import pseudonym
from tests.attribution.test_crediting import af_install, click
from tests.factories import AffiliateFactory, CampaignFactory, TrackingLinkFactory, UserFactory
from tests.payouts.helpers import day, plan, register, send_activity


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # The personas' passwords are hashed as they are made: PBKDF2 would be most of the runtime.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # The token endpoint's throttle counts in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def api() -> Callable[..., APIClient]:
    """A client signed in with ``user``'s API token (or anonymous without one)."""

    def make(user=None) -> APIClient:
        client = APIClient()
        if user is not None:
            token, _ = Token.objects.get_or_create(user=user)
            client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
        return client

    return make


@pytest.fixture
def dave(db) -> Affiliate:
    """An affiliate whose application is still pending."""
    return AffiliateFactory(
        user=UserFactory(username="dave"), name="Dave Pending", status=Affiliate.Status.PENDING
    )


T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


@pytest.fixture
def world(client, alice, bob, charlie, campaign, appsflyer) -> SimpleNamespace:
    """Alice has a link, a click, an install and a payout; bob and charlie a link each."""
    made = click(client, alice, campaign, at=T0, sub1="alice-sub")
    install = af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)
    keep.clicks_fill(settle=timedelta(0))
    run = PayoutRun.objects.create(
        period_start=date(2026, 10, 1), period_end=date(2026, 10, 31), status="paid"
    )
    payout = Payout.objects.create(
        run=run, affiliate=alice, amount=Decimal("120.00"), currency="EUR", reference="ALICE-REF"
    )
    # A player alice brought, with a month of activity for the player and cohort reports.
    register(alice, campaign, "ALICE-PLAYER", type="ftd", amount="10", at=T0)
    send_activity(campaign, day("ALICE-PLAYER", "2026-11-03", ggr="4242.42"))
    TrackingLinkFactory(affiliate=bob, campaign=campaign, name="bob's link")
    TrackingLinkFactory(affiliate=charlie, campaign=campaign, name="charlie's link")
    # Alice's own deal on the campaign, and a private campaign she was let into (offers).
    plan(campaign, name="Alice's deal", cpa={"ftd": "777.77"}, affiliate=alice)
    private = CampaignFactory(
        brand=campaign.brand, name="Alice's private offer", visibility=Campaign.Visibility.PRIVATE
    )
    CampaignAccess.objects.create(affiliate=alice, campaign=private, status="approved")
    return SimpleNamespace(
        alice=alice,
        campaign=campaign,
        link=made.link,
        click=made,
        conversion=install,
        payout=payout,
        # Strings that only alice's rows contain: none may appear in another's answer.
        secrets=[
            made.link.code,
            made.click_id,
            "alice-sub",
            "ALICE-REF",
            pseudonym(campaign.brand_id, "ALICE-PLAYER"),
            "4242.42",
            "777.77",
            "Alice's private offer",
        ],
    )
