"""Managers' admin: every page renders over real data, and the review queue acts with an audit."""

from datetime import timedelta

import pytest
from django.contrib import admin
from django.urls import reverse

from affiliates.demo import seed_demo
from affiliates.models import AuditEvent
from attribution.models import Conversion, FraudPolicy
from tests.attribution.test_crediting import T0, af_install, click

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(db):
    return seed_demo(clicks=300, days=5)


def test_every_admin_list_and_add_page_renders(manager_client, demo):
    for model, model_admin in admin.site._registry.items():
        info = (model._meta.app_label, model._meta.model_name)
        changelist = manager_client.get(reverse("admin:{}_{}_changelist".format(*info)))
        assert changelist.status_code == 200, info
        if model_admin.has_add_permission(changelist.wsgi_request):
            add = manager_client.get(reverse("admin:{}_{}_add".format(*info)))
            assert add.status_code == 200, info


def test_clicks_are_read_only_in_the_admin(manager_client, demo):
    from attribution.models import Click

    some = Click.objects.first()
    url = reverse("admin:attribution_click_change", args=[some.pk])
    page = manager_client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content


def test_the_ingestion_health_page_shows_counts_and_errors(manager_client, demo):
    token = demo.sources[0]["token"]
    manager_client.get(f"/postbacks/appsflyer/{token}/?platform=ios")  # no id: rejected
    page = manager_client.get(reverse("admin:attribution_postback_health"))
    assert page.status_code == 200
    assert b"appsflyer_id is missing" in page.content
    assert b"Backlog" in page.content


def test_a_manager_works_the_review_queue(
    manager_client, client, alice, campaign, appsflyer, manager
):
    FraudPolicy.objects.create(campaign=campaign, low_ctit_action="hold")
    made = click(client, alice, campaign, at=T0)
    held = af_install(client, appsflyer, at=T0 + timedelta(seconds=2), click_id=made.click_id)
    queue = manager_client.get(
        reverse("admin:attribution_conversion_changelist") + "?status=pending"
    )
    assert f">{held.pk}<".encode() in queue.content

    response = manager_client.post(
        reverse("admin:attribution_conversion_changelist"),
        {"action": "approve", "_selected_action": [held.pk]},
        follow=True,
    )

    assert response.status_code == 200
    held.refresh_from_db()
    assert held.status == Conversion.Status.APPROVED
    assert AuditEvent.objects.filter(object_id=str(held.pk), actor=manager).exists()


def test_approving_affiliates_leaves_an_audit_row(manager_client, manager):
    from tests.factories import AffiliateFactory

    pending = AffiliateFactory(status="pending")
    manager_client.post(
        reverse("admin:affiliates_affiliate_changelist"),
        {"action": "approve", "_selected_action": [pending.pk]},
    )
    pending.refresh_from_db()
    assert pending.status == "active"
    audit = AuditEvent.objects.get(object_id=str(pending.pk))
    assert (audit.old, audit.new, audit.actor) == ("pending", "active", manager)


def test_the_admin_asks_managers_for_a_one_time_code(client, manager):
    client.force_login(manager)  # a password alone
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    login_page = client.get(response["Location"])
    assert b"otp_token" in login_page.content


def test_the_program_overview_shows_the_days_state(manager_client, demo):
    page = manager_client.get(reverse("admin-overview"))
    assert page.status_code == 200
    assert b"Top affiliates" in page.content
    assert b"awaiting approval" in page.content


def test_the_back_office_names_the_portal_and_keeps_internal_tables_under_system(
    manager_client,
):
    page = manager_client.get(reverse("admin:index"))

    text = page.content.decode()
    assert "Django administration" not in text and "Django site admin" not in text
    assert "<title>Back office | Affiliate portal</title>" in text
    sections = {
        app["name"]: [m["object_name"] for m in app["models"]] for app in page.context["app_list"]
    }
    assert list(sections)[-1] == "System"
    assert {"DailyRollup", "PostbackEvent", "TOTPDevice", "AccessLog"} <= set(sections["System"])
    assert "DailyRollup" not in sections["Tracking & conversions"]
    assert "Conversion" in sections["Tracking & conversions"]
    assert "Outbound deliveries" in text and "deliverys" not in text
    assert "SKAdNetwork mappings" in text


def test_the_login_page_names_the_portal(client):
    page = client.get(reverse("admin:login"))
    assert b"Affiliate portal" in page.content and b"Django administration" not in page.content
