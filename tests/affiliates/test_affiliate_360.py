"""The affiliate 360 in the admin, and viewing the dashboard as an affiliate: read-only,
audited, visibly marked, and only for a manager who passed the admin's door."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from affiliates.models import AffiliateNote, AuditEvent, TrackingLink
from affiliates.views import VIEW_AS
from attribution.models import OutboundEndpoint
from attribution.rollups import keep
from tests.attribution.test_crediting import af_install, click
from tests.factories import CampaignFactory
from tests.payouts.helpers import convert, plan

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice_busy(client, alice, campaign, appsflyer, manager):
    """alice: a click and an install today, a note, a postback URL that keeps failing."""
    now = timezone.now() - timedelta(hours=2)
    made = click(client, alice, campaign, at=now)
    af_install(client, appsflyer, at=now + timedelta(minutes=5), click_id=made.click_id)
    keep.clicks_fill(settle=timedelta(0))  # the beat task that counts clicks
    AffiliateNote.objects.create(affiliate=alice, author=manager, text="Asked for a higher CPA")
    OutboundEndpoint.objects.create(
        affiliate=alice,
        url_template="https://alice.example/pb?c={click_id}",
        consecutive_failures=3,
    )
    alice.payment_details = "IBAN DE89 3704 0044 0532 0130 00"
    alice.save(update_fields=["payment_details"])
    return alice


def change_url(affiliate) -> str:
    return reverse("admin:affiliates_affiliate_change", args=[affiliate.pk])


def test_the_affiliate_page_shows_stats_money_links_postbacks_notes_and_history(
    manager_client, alice_busy
):
    # The last 7 days: the click and install came two hours ago, which after midnight is
    # yesterday ("today" failed this test between 00:00 and 02:00 UTC).
    page = manager_client.get(change_url(alice_busy) + "?period=last7")

    assert page.status_code == 200
    view = page.context["view360"]
    assert view.summary.totals["installs"] == 1 and view.summary.totals["clicks"] == 1
    assert view.mobile["installs"] == 1
    text = page.content.decode()
    assert 'data-table="stats-360"' in text and "Mobile" in text
    assert "Asked for a higher CPA" in text
    assert "failing (3 in a row)" in text
    assert "IBAN DE89" in text
    assert TrackingLink.objects.get(affiliate=alice_busy).code in text
    assert 'id="view-as-form"' in text


def test_a_bad_custom_period_on_the_affiliate_page_is_a_message_not_a_500(
    manager_client, alice_busy
):
    page = manager_client.get(
        change_url(alice_busy) + "?period=custom&start=2026-10-31&end=2026-10-01"
    )
    assert page.status_code == 200
    assert b"before it starts" in page.content


def test_a_manager_views_as_the_affiliate_read_only_and_audited(
    manager_client, manager, alice_busy
):
    # when: the manager opens the dashboard as alice
    started = manager_client.post(
        reverse("admin:affiliates_affiliate_view_as", args=[alice_busy.pk])
    )
    assert started.status_code == 302 and started["Location"] == reverse("affiliate-dashboard")
    dashboard = manager_client.get(reverse("affiliate-dashboard"))

    # then: alice's dashboard, marked, and the start is in the audit log
    assert dashboard.status_code == 200
    text = dashboard.content.decode()
    assert 'id="view-as-banner"' in text and f"Viewing as {alice_busy.name}" in text
    assert dashboard.wsgi_request.affiliate == alice_busy
    audit = AuditEvent.objects.get(field="view_as", object_id=str(alice_busy.pk))
    assert (audit.actor, audit.new) == (manager, "viewing")

    # and: nothing can be changed, and the API token page is not shown
    links_before = TrackingLink.objects.count()
    refused = manager_client.post(
        reverse("affiliate-links"), {"campaign": alice_busy.links.first().campaign_id}
    )
    assert refused.status_code == 403
    assert TrackingLink.objects.count() == links_before
    assert manager_client.post(reverse("affiliate-token")).status_code == 403
    assert manager_client.get(reverse("affiliate-token")).status_code == 403
    endpoint = OutboundEndpoint.objects.get(affiliate=alice_busy)
    deleted = manager_client.post(reverse("affiliate-postback-delete", args=[endpoint.pk]))
    assert deleted.status_code == 403
    assert OutboundEndpoint.objects.filter(pk=endpoint.pk).exists()

    # when: the manager ends the view, it is audited and the dashboard is no longer alice's
    ended = manager_client.post(reverse("affiliate-view-as-stop"))
    assert ended["Location"] == change_url(alice_busy)
    assert AuditEvent.objects.filter(field="view_as", new="").count() == 1
    assert manager_client.get(reverse("affiliate-dashboard")).status_code == 302


def test_view_as_needs_a_manager_who_passed_two_factor(client, manager, alice_busy, settings):
    settings.ADMIN_2FA = True
    client.force_login(manager)  # a password alone
    session = client.session
    session[VIEW_AS] = alice_busy.pk
    session.save()
    response = client.get(reverse("affiliate-dashboard"))
    assert response.status_code == 302  # to the admin, not alice's figures
    assert b"Viewing as" not in response.content


def test_an_affiliate_cannot_view_as_anyone(client, alice, charlie):
    client.force_login(charlie.user)
    session = client.session
    session[VIEW_AS] = alice.pk
    session.save()
    page = client.get(reverse("affiliate-dashboard"))
    assert page.wsgi_request.affiliate == charlie
    assert b"Viewing as" not in page.content


def test_only_a_post_starts_a_view(manager_client, alice):
    response = manager_client.get(reverse("admin:affiliates_affiliate_view_as", args=[alice.pk]))
    assert response.status_code == 302
    assert VIEW_AS not in manager_client.session
    assert not AuditEvent.objects.filter(field="view_as").exists()


def test_earnings_show_on_the_affiliate_page(manager_client, alice):
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "40.00"})
    convert(alice, campaign, player="p")
    page = manager_client.get(change_url(alice))
    assert page.context["view360"].balance["approved"] == Decimal("40.00")
    assert 'data-balance="approved">40.00' in page.content.decode()
