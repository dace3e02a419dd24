"""Writes over the API: links (affiliates and managers); affiliates, campaigns, plans (managers)."""

from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from affiliates.models import Affiliate, AuditEvent, Campaign, TrackingLink
from payouts.models import CommissionPlan, PlanVersion
from tests.factories import BrandFactory, CampaignFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db


# --- links --------------------------------------------------------------------------------------


def test_an_affiliate_creates_a_link_on_a_public_campaign(api, alice, campaign):
    response = api(alice.user).post(
        "/api/v1/links/",
        {"campaign": campaign.pk, "name": "Spring", "sub1": "fb", "deep_link": "/promo"},
        format="json",
    )

    assert response.status_code == 201, response.content
    link = TrackingLink.objects.get(pk=response.json()["id"])
    assert (link.affiliate, link.campaign, link.name, link.sub1, link.deep_link) == (
        alice,
        campaign,
        "Spring",
        "fb",
        "/promo",
    )
    assert response.json()["url"] == f"http://testserver/c/{link.code}"
    assert response.json()["affiliate"] == alice.pk
    assert response.json()["is_active"] is True


@pytest.mark.parametrize(
    "change", [{"status": Campaign.Status.PAUSED}, {"visibility": Campaign.Visibility.PRIVATE}]
)
def test_an_affiliate_cannot_link_a_paused_or_private_campaign(api, alice, campaign, change):
    Campaign.objects.filter(pk=campaign.pk).update(**change)

    response = api(alice.user).post("/api/v1/links/", {"campaign": campaign.pk}, format="json")

    assert response.status_code == 400
    assert "campaign" in response.json()
    assert not TrackingLink.objects.exists()


def test_an_affiliate_renames_pauses_and_retags_its_link(api, alice, campaign):
    link = TrackingLinkFactory(affiliate=alice, campaign=campaign)
    other = CampaignFactory()

    response = api(alice.user).patch(
        f"/api/v1/links/{link.pk}/",
        {"name": "Paused", "sub2": "x", "is_active": False, "campaign": other.pk, "code": "mine"},
        format="json",
    )

    assert response.status_code == 200, response.content
    link.refresh_from_db()
    assert (link.name, link.sub2, link.is_active) == ("Paused", "x", False)
    # What a link is (whose, on which campaign, its code) does not change.
    assert link.campaign == campaign
    assert link.code != "mine"


def test_a_manager_creates_a_link_for_an_affiliate(api, manager, alice, campaign):
    client = api(manager)

    missing = client.post("/api/v1/links/", {"campaign": campaign.pk}, format="json")
    made = client.post(
        "/api/v1/links/", {"campaign": campaign.pk, "affiliate": alice.pk}, format="json"
    )

    assert missing.status_code == 400
    assert "affiliate" in missing.json()
    assert made.status_code == 201
    assert TrackingLink.objects.get(pk=made.json()["id"]).affiliate == alice


# --- affiliates ---------------------------------------------------------------------------------


def test_a_manager_creates_an_affiliate_with_its_login(api, manager, alice):
    response = api(manager).post(
        "/api/v1/affiliates/",
        {
            "username": "erin",
            "email": "erin@example.com",
            "password": "a long enough secret 42",
            "name": "Erin Ads",
            "status": "active",
            "parent": alice.pk,
            "manager": manager.pk,
            "time_zone": "Europe/Berlin",
            "currency": "USD",
            "minimum_payout": "100.00",
        },
        format="json",
    )

    assert response.status_code == 201, response.content
    assert "password" not in response.json()
    erin = Affiliate.objects.select_related("user").get(pk=response.json()["id"])
    assert erin.user.check_password("a long enough secret 42")
    assert (erin.user.username, erin.user.email) == ("erin", "erin@example.com")
    assert (erin.status, erin.parent, erin.manager) == ("active", alice, manager)
    assert (erin.time_zone, erin.currency, erin.minimum_payout) == (
        "Europe/Berlin",
        "USD",
        Decimal("100.00"),
    )
    assert AuditEvent.objects.filter(object_id=str(erin.pk), field="status", new="active").exists()


def test_affiliates_made_without_an_email_do_not_collide_and_a_taken_email_is_a_400(
    api, manager, alice
):
    # two affiliates made without an email address (found by schemathesis: the second's "no
    # email" matched the first's, and the create answered 500)
    client = api(manager)
    body = {"password": "a long enough secret 42", "name": "N"}
    first = client.post("/api/v1/affiliates/", {**body, "username": "nomail1"}, format="json")
    second = client.post("/api/v1/affiliates/", {**body, "username": "nomail2"}, format="json")
    assert (first.status_code, second.status_code) == (201, 201), second.content

    client.post(
        "/api/v1/affiliates/",
        {**body, "username": "mail1", "email": "same@example.com"},
        format="json",
    )
    taken = client.post(
        "/api/v1/affiliates/",
        {**body, "username": "mail2", "email": "Same@example.com"},
        format="json",
    )
    assert taken.status_code == 400
    assert taken.json()["username"] == ["That username or email already has an account."]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("username", "alice"),
        ("password", "123"),
        ("time_zone", "Mars/Olympus"),
        ("currency", "euro"),
        ("minimum_payout", "-1"),
    ],
)
def test_a_bad_new_affiliate_is_a_400_naming_the_field(api, manager, alice, field, value):
    body = {"username": "erin", "password": "a long enough secret 42", "name": "Erin"}

    response = api(manager).post("/api/v1/affiliates/", {**body, field: value}, format="json")

    assert response.status_code == 400
    assert field in response.json()
    assert not Affiliate.objects.filter(name="Erin").exists()


def test_a_managers_status_change_leaves_an_audit_row(api, manager, alice):
    response = api(manager).patch(
        f"/api/v1/affiliates/{alice.pk}/", {"status": "suspended"}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["status"] == "suspended"
    alice.refresh_from_db()
    assert alice.status == "suspended"
    audit = AuditEvent.objects.get(object_id=str(alice.pk), field="status")
    assert (audit.old, audit.new, audit.actor) == ("active", "suspended", manager)


def test_an_affiliate_cannot_become_its_own_ancestor(api, manager, alice, bob):
    response = api(manager).patch(
        f"/api/v1/affiliates/{alice.pk}/", {"parent": bob.pk}, format="json"
    )

    assert response.status_code == 400
    alice.refresh_from_db()
    assert alice.parent is None


def test_user_credentials_are_not_changed_through_an_affiliate(api, manager, alice):
    api(manager).patch(
        f"/api/v1/affiliates/{alice.pk}/", {"password": "taken over", "name": "A"}, format="json"
    )

    alice.user.refresh_from_db()
    assert alice.user.check_password("correct horse battery staple")
    assert get_user_model().objects.filter(username="alice").exists()


# --- campaigns ----------------------------------------------------------------------------------


def test_a_manager_creates_and_pauses_a_campaign(api, manager):
    client = api(manager)
    brand = BrandFactory()

    made = client.post(
        "/api/v1/campaigns/",
        {"brand": brand.pk, "name": "Winter", "web_url": "https://casino.example/?c={click_id}"},
        format="json",
    )
    paused = client.patch(f"/api/v1/campaigns/{made.json()['id']}/", {"status": "paused"})

    assert made.status_code == 201, made.content
    assert paused.status_code == 200
    campaign = Campaign.objects.get(pk=made.json()["id"])
    assert (campaign.name, campaign.status) == ("Winter", "paused")
    assert campaign.web_url == "https://casino.example/?c={click_id}"


def test_a_campaign_without_any_destination_is_a_400(api, manager, campaign):
    client = api(manager)

    made = client.post(
        "/api/v1/campaigns/", {"brand": BrandFactory().pk, "name": "Nowhere"}, format="json"
    )
    emptied = client.patch(
        f"/api/v1/campaigns/{campaign.pk}/",
        {"web_url": "", "ios_url": "", "android_url": ""},
        format="json",
    )

    assert made.status_code == emptied.status_code == 400
    assert "destination" in str(made.json())
    campaign.refresh_from_db()
    assert campaign.ios_url


# --- commission plans ---------------------------------------------------------------------------


def test_a_manager_creates_a_plan_and_adds_a_version_with_rules_and_tiers(api, manager):
    client = api(manager)

    plan = client.post(
        "/api/v1/plans/", {"name": "Hybrid", "currency": "EUR", "hold_days": 14}, format="json"
    )
    version = client.post(
        f"/api/v1/plans/{plan.json()['id']}/versions/",
        {
            "valid_from": "2026-12-01T00:00:00Z",
            "revshare_percent": "25",
            "subaffiliate_percents": ["10", "5"],
            "cpa_rules": [
                {"conversion_type": "ftd", "amount": "30.00", "min_amount": "20.00"},
                {"conversion_type": "registration", "amount": "2.00", "countries": "DE,AT"},
            ],
            "tiers": [{"from_ftds": 10, "cpa_amount": "40.00"}],
        },
        format="json",
    )

    assert plan.status_code == 201, plan.content
    assert version.status_code == 201, version.content
    stored = PlanVersion.objects.get(plan_id=plan.json()["id"])
    assert stored.revshare_percent == Decimal(25)
    assert stored.subaffiliate_percents == ["10.0000", "5.0000"]
    assert sorted(r.amount for r in stored.cpa_rules.all()) == [Decimal(2), Decimal(30)]
    assert [t.cpa_amount for t in stored.tiers.all()] == [Decimal(40)]
    shown = client.get(f"/api/v1/plans/{plan.json()['id']}/").json()
    assert shown["versions"][0]["cpa_rules"][0]["conversion_type"] in ("ftd", "registration")
    assert shown["versions"][0]["tiers"] == [
        {"from_ftds": 10, "cpa_amount": "40.00", "revshare_percent": None}
    ]


def test_a_manager_adds_a_version_paying_revshare_on_ngr(api, manager):
    plan = CommissionPlan.objects.create(name="Casino NGR")

    made = api(manager).post(
        f"/api/v1/plans/{plan.pk}/versions/",
        {
            "valid_from": "2026-12-01T00:00:00Z",
            "revshare_percent": "25",
            "admin_fee_percent": "10",
            "revshare_basis": "ngr",
            "ngr_deductions": ["bonuses", "taxes"],
            "product_percents": {"Casino": "30", "sportsbook": "25"},
            "ngr_tiers": [{"from_ngr": "10000.00", "revshare_percent": "35"}],
        },
        format="json",
    )

    assert made.status_code == 201, made.content
    stored = PlanVersion.objects.get(plan=plan)
    assert (stored.revshare_basis, stored.ngr_deductions) == ("ngr", ["bonuses", "taxes"])
    assert stored.product_percents == {"casino": "30.0000", "sportsbook": "25.0000"}
    assert [(t.from_ngr, t.revshare_percent) for t in stored.ngr_tiers.all()] == [
        (Decimal("10000.00"), Decimal("35"))
    ]


@pytest.mark.parametrize(
    "version",
    [
        {"valid_from": "2026-01-01T00:00:00Z"},  # the plan already has a version from then
        {"valid_from": "2027-01-01T00:00:00Z", "ngr_deductions": ["wins"]},
        {"valid_from": "2027-01-01T00:00:00Z", "product_percents": {"casino": "101"}},
        {"valid_from": "2027-01-01T00:00:00Z", "revshare_basis": "ggr"},
        {"valid_from": "2027-01-01T00:00:00Z", "tiers": [{"from_ftds": 5}, {"from_ftds": 5}]},
        {"valid_from": "2027-01-01T00:00:00Z", "subaffiliate_percents": ["150"]},
        {"valid_from": "2027-01-01T00:00:00Z", "cpa_rules": [{"conversion_type": "x"}]},
    ],
)
def test_a_bad_version_is_a_400_and_writes_nothing(api, manager, version):
    plan = CommissionPlan.objects.create(name="Standard")
    PlanVersion.objects.create(plan=plan, valid_from="2026-01-01T00:00:00Z")

    response = api(manager).post(f"/api/v1/plans/{plan.pk}/versions/", version, format="json")

    assert response.status_code == 400
    assert plan.versions.count() == 1


def test_a_payout_links_its_statement(api, world):
    payout = api(world.alice.user).get(f"/api/v1/payouts/{world.payout.pk}/").json()

    assert payout["statement_url"] == f"http://testserver/payouts/{world.payout.pk}/statement/"
    assert (payout["amount"], payout["currency"], payout["reference"]) == (
        "120.00",
        "EUR",
        "ALICE-REF",
    )
    assert (payout["period_start"], payout["period_end"]) == ("2026-10-01", "2026-10-31")
