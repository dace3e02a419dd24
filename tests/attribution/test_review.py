"""The review queue: a held conversion's page lays out the evidence and takes a decision with a
note; bulk actions do the same; affiliates see a plain reason, never the rule that held it."""

from datetime import timedelta

import pytest
from django.urls import reverse

from affiliates.models import AuditEvent
from attribution.models import Conversion, FraudPolicy
from tests.attribution.test_crediting import T0, af_install, click

pytestmark = pytest.mark.django_db


@pytest.fixture
def held(client, alice, campaign, appsflyer) -> Conversion:
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(client, appsflyer, at=T0 + timedelta(seconds=2), click_id=made.click_id)
    assert conversion.status == "pending"
    return conversion


def review_url(conversion: Conversion) -> str:
    return reverse("admin:attribution_conversion_review", args=[conversion.pk])


def test_the_conversion_page_lays_out_the_evidence(manager_client, held):
    page = manager_client.get(reverse("admin:attribution_conversion_change", args=[held.pk]))

    assert page.status_code == 200
    text = page.content.decode()
    assert "held for review" in text
    assert "minimum click-to-install time 10 s" in text  # the rule and its threshold
    assert 'data-field="ctit">2 s' in text
    assert held.click.click_id in text
    assert 'data-history="competing"' in text and 'data-history="device"' in text
    assert 'value="approve"' in text and 'value="reject"' in text


def test_the_evidence_shows_the_competing_claim(manager_client, client, held, appsflyer, charlie):
    # given: charlie's click claims the same install (same appsflyer id): one wins
    other = click(client, charlie, held.campaign, at=T0 + timedelta(seconds=1))
    af_install(
        client, appsflyer, at=T0 + timedelta(seconds=2), click_id=other.click_id, afid="af-2"
    )
    rival = Conversion.objects.exclude(pk=held.pk).get(claim_key=held.claim_key)

    page = manager_client.get(reverse("admin:attribution_conversion_change", args=[held.pk]))

    assert f">{rival.pk}</a>" in page.content.decode()


def test_a_manager_approves_a_held_conversion_from_its_page(manager_client, manager, held):
    response = manager_client.post(review_url(held), {"decision": "approve", "note": "slow MMP"})

    assert response.status_code == 302
    held.refresh_from_db()
    assert (held.status, held.reason) == ("approved", "manager")
    audit = AuditEvent.objects.get(object_id=str(held.pk), field="status")
    assert (audit.actor, audit.note, audit.new) == (manager, "slow MMP", "approved/manager")


def test_a_rejection_needs_a_note_and_is_a_form_error_without_one(manager_client, held):
    response = manager_client.post(review_url(held), {"decision": "reject", "note": "  "})

    assert response.status_code == 400
    assert b"Say why it is rejected" in response.content
    held.refresh_from_db()
    assert held.status == "pending"


def test_a_rejection_keeps_the_rule_and_the_note(manager_client, held):
    manager_client.post(review_url(held), {"decision": "reject", "note": "injected clicks"})

    held.refresh_from_db()
    assert (held.status, held.reason, held.detail) == ("rejected", "low_ctit", "injected clicks")


def test_an_unknown_decision_is_a_form_error(manager_client, held):
    response = manager_client.post(review_url(held), {"decision": "delete"})
    assert response.status_code == 400
    held.refresh_from_db()
    assert held.status == "pending"


def test_bulk_reject_asks_for_a_note_then_rejects_with_it(manager_client, held):
    changelist = reverse("admin:attribution_conversion_changelist")
    without = {"action": "reject", "_selected_action": [held.pk], "index": 0}

    manager_client.post(changelist, without, follow=True)
    held.refresh_from_db()
    assert held.status == "pending"

    manager_client.post(changelist, {**without, "note": "bot farm"}, follow=True)
    held.refresh_from_db()
    assert (held.status, held.detail) == ("rejected", "bot farm")


def test_the_queue_shows_status_and_reason_columns(manager_client, held):
    page = manager_client.get(
        reverse("admin:attribution_conversion_changelist") + "?status=pending"
    )
    text = page.content.decode()
    assert "column-status" in text and "column-reason_code" in text
    assert 'name="note"' in text  # the note beside the bulk actions


def test_borderline_rules_hold_and_an_explicit_policy_still_rejects(
    client, alice, campaign, appsflyer
):
    made = click(client, alice, campaign, at=T0)
    late = af_install(client, appsflyer, at=T0 + timedelta(days=9), click_id=made.click_id)
    assert (late.status, late.reason) == ("pending", "outside_lookback")
    assert FraudPolicy().low_ctit_action == FraudPolicy.Action.HOLD


def test_affiliates_see_a_plain_reason_on_the_page_in_the_csv_and_the_api(
    client, alice, held, manager_client
):
    # given: one held and one rejected conversion of alice's
    manager_client.post(review_url(held), {"decision": "reject", "note": "n"})
    client.force_login(alice.user)
    period = "?period=custom&start=2026-11-01&end=2026-11-30"

    page = client.get(reverse("affiliate-conversions") + period).content.decode()
    export = client.get(reverse("affiliate-conversions") + period + "&export=csv")
    csv_text = (
        b"".join(export.streaming_content).decode()
        if export.streaming
        else (export.content.decode())
    )
    api = client.get("/api/v1/conversions/").json()["results"]

    for shown in (page, csv_text):
        assert "rejected: invalid traffic" in shown
        assert "low_ctit" not in shown and "click injection" not in shown.lower()
    assert [(c["reason"], c["reason_text"]) for c in api] == [
        ("invalid_traffic", "rejected: invalid traffic")
    ]


def test_an_affiliate_sees_under_review_for_a_held_conversion(client, alice, held):
    client.force_login(alice.user)
    api = client.get("/api/v1/conversions/").json()["results"]
    assert [(c["status"], c["reason"]) for c in api] == [("pending", "under_review")]


def test_managers_still_see_the_rules_code_in_the_api(manager_client, held):
    api = manager_client.get("/api/v1/conversions/").json()["results"]
    assert [(c["reason"], c["status"]) for c in api] == [("low_ctit", "pending")]
