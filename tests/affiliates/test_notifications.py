"""Notifications both ways: every kind reaches the bell and the inbox (Django's locmem mail), in
HTML and text, with a working unsubscribe link; a kind turned off is not sent; nobody reads
another's notices."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core import mail
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from affiliates import notify, offers, profile, services
from affiliates.models import (
    Affiliate,
    Campaign,
    NoticeKind,
    NoticeOptOut,
    Notification,
)
from affiliates.tasks import manager_alerts
from attribution.models import Conversion, OutboundDelivery, OutboundEndpoint, Postback
from attribution.outbound import deliver
from payouts import runs
from portal.celery import app
from tests.factories import AffiliateFactory, CampaignFactory, ConversionFactory, UserFactory
from tests.payouts.helpers import convert, plan

# Real commits, so that what is published on commit (the email task) is published.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def sent():
    """Run the email tasks in place as they are published; yield Django's locmem outbox."""
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True
    mail.outbox.clear()
    try:
        yield mail.outbox
    finally:
        app.conf.task_always_eager = eager


def only(outbox, to: str) -> mail.EmailMultiAlternatives:
    mine = [m for m in outbox if m.to == [to]]
    assert len(mine) == 1, [(m.to, m.subject) for m in outbox]
    return mine[0]


def html_of(message) -> str:
    ((html, kind),) = message.alternatives
    assert kind == "text/html"
    return html


def test_approving_an_application_tells_the_affiliate(manager_client, sent):
    pending = AffiliateFactory(status="pending", user=UserFactory(email="newbie@example.com"))
    manager_client.post(
        reverse("admin:affiliates_affiliate_changelist"),
        {"action": "approve", "_selected_action": [pending.pk]},
    )
    message = only(sent, "newbie@example.com")
    assert message.subject == "Your application is approved"
    assert "Welcome" in message.body and "Welcome" in html_of(message)
    assert Notification.objects.get(user=pending.user).kind == NoticeKind.APPLICATION_APPROVED


def test_refusing_an_application_tells_the_affiliate(manager, sent):
    pending = AffiliateFactory(status="pending", user=UserFactory(email="no@example.com"))
    services.affiliates_set_status(
        affiliates=Affiliate.objects.filter(pk=pending.pk), status="rejected", actor=manager
    )
    assert only(sent, "no@example.com").subject == "Your application was not accepted"


def test_a_sign_up_tells_the_managers(client, manager, sent):
    manager.email = "boss@example.com"
    manager.save()
    client.post(
        reverse("signup"),
        {
            "username": "dora",
            "email": "dora@example.com",
            "name": "Dora Deals",
            "password1": "a-long-password-2026",
            "password2": "a-long-password-2026",
            "time_zone": "UTC",
            "currency": "EUR",
            "country": "GB",
            "traffic_sources": "Deal newsletters",
        },
    )
    assert Affiliate.objects.filter(user__username="dora").exists()
    message = only(sent, "boss@example.com")
    assert message.subject == "New sign-up: Dora Deals"


def test_payout_approved_paid_and_run_ready(alice, manager, sent):
    alice.user.email = "alice@example.com"
    alice.user.save()
    manager.email = "boss@example.com"
    manager.save()
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "75.00"})
    convert(alice, campaign, player="a")
    run = runs.payout_run_create(
        period_start=timezone.datetime(2026, 10, 1).date(),
        period_end=timezone.datetime(2026, 10, 31).date(),
    )
    run = runs.payout_run_execute(run_id=run.pk)
    assert only(sent, "boss@example.com").subject.startswith("Payout run 2026-10-01")

    runs.payout_run_approve(run=run, actor=manager)
    approved = [m for m in sent if m.to == ["alice@example.com"]]
    assert [m.subject for m in approved] == ["Payout approved: 75.00 EUR"]

    runs.payout_mark_paid(payout=run.payouts.get(), reference="SEPA-9", actor=manager)
    paid = [m for m in sent if m.to == ["alice@example.com"]][-1]
    assert paid.subject == "Payout paid: 75.00 EUR" and "SEPA-9" in paid.body


def test_a_disabled_postback_url_tells_its_affiliate(alice, settings, sent):
    alice.user.email = "alice@example.com"
    alice.user.save()
    endpoint = OutboundEndpoint.objects.create(
        affiliate=alice,
        url_template="https://alice.example/pb",
        consecutive_failures=settings.OUTBOUND_DISABLE_AFTER - 1,
    )
    outcome = deliver._failed_for_good(endpoint, OutboundDelivery(error="HTTP 500"))
    assert outcome == "disabled"
    message = only(sent, "alice@example.com")
    assert message.subject == "A postback URL of yours was switched off"
    assert "HTTP 500" in message.body


def test_a_new_public_offer_tells_active_affiliates(alice, charlie, manager, sent):
    alice.user.email, charlie.user.email = "alice@example.com", "charlie@example.com"
    alice.user.save()
    charlie.user.save()
    AffiliateFactory(status="pending", user=UserFactory(email="waiting@example.com"))
    campaign = CampaignFactory(status=Campaign.Status.PAUSED)
    campaign.status = Campaign.Status.ACTIVE
    request = RequestFactory().post("/")
    request.user = manager
    admin.site._registry[Campaign].save_model(request, campaign, form=None, change=True)
    assert sorted(m.to[0] for m in sent) == ["alice@example.com", "charlie@example.com"]
    assert sent[0].subject == f"New offer: {campaign.name}"


def test_an_announcement_reaches_a_segment_bell_and_inbox(manager_client, alice, charlie, sent):
    alice.user.email, charlie.user.email = "alice@example.com", "charlie@example.com"
    alice.user.save()
    charlie.user.save()
    Affiliate.objects.filter(pk=charlie.pk).update(currency="USD")

    response = manager_client.post(
        reverse("admin:affiliates_announcement_add"),
        {
            "title": "Double CPA in December",
            "body": "All month.",
            "segment": "currency",
            "currency": "USD",
        },
    )

    assert response.status_code == 302
    assert [m.to for m in sent] == [["charlie@example.com"]]
    assert Notification.objects.get(user=charlie.user).title == "Double CPA in December"
    assert not Notification.objects.filter(user=alice.user).exists()


def test_an_announcement_to_a_campaign_needs_the_campaign(manager_client):
    response = manager_client.post(
        reverse("admin:affiliates_announcement_add"),
        {"title": "x", "body": "y", "segment": "campaign"},
    )
    assert response.status_code == 200
    assert b"Pick the campaign" in response.content


def test_manager_alerts_review_queue_and_silent_source(manager, settings, appsflyer, sent):
    manager.email = "boss@example.com"
    manager.save()
    settings.REVIEW_QUEUE_ALERT = 1
    ConversionFactory(status=Conversion.Status.PENDING)
    Postback.objects.create(
        source=appsflyer,
        kind=appsflyer.kind,
        method="GET",
        query="",
        dedup_key="s1",
        status="processed",
        received_at=timezone.now() - timedelta(hours=20),
    )

    manager_alerts()
    manager_alerts()  # the same alerts are not repeated within a day

    subjects = sorted(m.subject for m in sent)
    assert subjects == [
        "1 conversions wait for review",
        f"No postbacks from {appsflyer} for 6 h",
    ]


def test_an_access_request_tells_the_managers_and_the_answer_the_affiliate(alice, manager, sent):
    alice.user.email, manager.email = "alice@example.com", "manager@example.com"
    alice.user.save()
    manager.save()
    gated = CampaignFactory(name="High rollers", visibility=Campaign.Visibility.APPROVAL)

    access = offers.access_request(affiliate=alice, campaign=gated, message="review site, DE")
    asked = only(sent, "manager@example.com")
    assert asked.subject == "Alice Media asks to promote High rollers"
    assert "review site, DE" in asked.body and "review site, DE" in html_of(asked)

    offers.access_decide(access=access, approve=False, reason="no DE licence", actor=manager)
    answered = only(sent, "alice@example.com")
    assert answered.subject == "Access to High rollers was refused"
    assert "no DE licence" in answered.body
    assert Notification.objects.get(user=alice.user).kind == NoticeKind.ACCESS_ANSWERED
    assert Notification.objects.get(user=manager).kind == NoticeKind.ACCESS_REQUEST


def test_new_payment_details_tell_the_affiliate_and_the_managers(alice, manager, sent):
    alice.user.email, manager.email = "alice@example.com", "manager@example.com"
    alice.user.save()
    manager.save()
    change = profile.payment_change_request(
        affiliate=alice,
        details={"method": "paypal", "paypal_email": "pay@alice.example"},
        confirm_url="https://portal.example/confirm/{token}/",
        actor=alice.user,
    )
    asked = only(sent, "alice@example.com")
    assert asked.subject == "Confirm your new payment details"
    assert f"https://portal.example/confirm/{change.token}/" in asked.body
    sent.clear()

    profile.payment_change_confirm(affiliate=alice, token=change.token)

    told = only(sent, "alice@example.com")
    assert told.subject == "Your payment details were changed"
    assert "PayPal: pay@alice.example" in told.body and "PayPal: pay@alice.example" in html_of(told)
    warned = only(sent, "manager@example.com")
    assert warned.subject == "Alice Media changed their payment details"


def test_a_kind_turned_off_is_neither_shown_nor_sent(alice, sent):
    alice.user.email = "alice@example.com"
    alice.user.save()
    NoticeOptOut.objects.create(user=alice.user, kind=NoticeKind.ANNOUNCEMENT)
    notify.notify(users=[alice.user], kind=NoticeKind.ANNOUNCEMENT, title="Hello")
    notify.notify(users=[alice.user], kind=NoticeKind.NEW_OFFER, title="Offer")
    assert [m.subject for m in sent] == ["Offer"]


def test_every_email_has_a_working_unsubscribe_link(client, alice, sent):
    alice.user.email = "alice@example.com"
    alice.user.save()
    notify.notify(users=[alice.user], kind=NoticeKind.ANNOUNCEMENT, title="News")
    message = only(sent, "alice@example.com")
    link = re.search(r"http://\S+/notifications/unsubscribe/\S+/", message.body).group(0)
    assert link in html_of(message)
    assert message.extra_headers["List-Unsubscribe"] == f"<{link}>"
    path = link.split("127.0.0.1:8000", 1)[1]

    # when: the affiliate (not signed in) follows it and confirms
    assert b"Stop" in client.get(path).content
    assert not NoticeOptOut.objects.exists()
    client.post(path)

    # then: no more announcements
    assert NoticeOptOut.objects.filter(user=alice.user, kind="announcement").exists()
    notify.notify(users=[alice.user], kind=NoticeKind.ANNOUNCEMENT, title="More news")
    assert len(sent) == 1


def test_a_forged_unsubscribe_link_is_refused(client):
    assert client.post("/notifications/unsubscribe/not-a-token/").status_code == 404
    assert not NoticeOptOut.objects.exists()


def test_the_bell_counts_unread_and_the_inbox_is_ones_own(client, alice, charlie):
    notify.notify(users=[alice.user], kind=NoticeKind.NEW_OFFER, title="For alice")
    notify.notify(users=[charlie.user], kind=NoticeKind.NEW_OFFER, title="For charlie")
    client.force_login(alice.user)

    dashboard = client.get(reverse("affiliate-dashboard"))
    assert re.search(rb'id="bell"[^>]*>[^<]*<span data-unread>1</span>', dashboard.content)
    inbox = client.get(reverse("notifications"))
    assert b"For alice" in inbox.content and b"For charlie" not in inbox.content

    client.post(reverse("notifications"), {"read": "1"})
    assert not Notification.objects.filter(user=alice.user, read_at__isnull=True).exists()
    assert Notification.objects.filter(user=charlie.user, read_at__isnull=True).exists()


def test_settings_turn_kinds_off_and_on(client, alice):
    client.force_login(alice.user)
    kept = [k for k in NoticeKind.values if k != NoticeKind.ANNOUNCEMENT]
    client.post(reverse("notifications"), {"kinds": kept})
    assert list(NoticeOptOut.objects.values_list("kind", flat=True)) == ["announcement"]
    client.post(reverse("notifications"), {"kinds": NoticeKind.values})
    assert not NoticeOptOut.objects.exists()


def test_the_admin_shows_the_managers_bell(manager_client, manager):
    notify.notify(users=[manager], kind=NoticeKind.NEW_SIGNUP, title="New sign-up: X")
    page = manager_client.get(reverse("admin:index"))
    assert re.search(rb'id="bell"[^>]*>[^<]*<span data-unread>1</span>', page.content)


def test_an_email_is_sent_once(alice, sent):
    alice.user.email = "alice@example.com"
    alice.user.save()
    (row,) = notify.notify(users=[alice.user], kind=NoticeKind.NEW_OFFER, title="Once")
    assert notify.email_send(notification_id=row.pk) is False  # already sent on commit
    assert len(sent) == 1
