"""The affiliate's profile (issue 17, point 4): contact details, password change, and payment
details that take effect only through a mailed confirmation and hold the next payout until a
manager checks them. IBANs and BICs are the published examples of their standards' owners
(ECBS: DE89 3704 0044 0532 0130 00; SWIFT: DEUTDEFF)."""

import re
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.core import mail
from django.urls import reverse

from affiliates import profile
from affiliates.models import (
    AuditEvent,
    NoticeKind,
    Notification,
    PaymentDetailsChange,
    SettingChange,
)
from payouts import runs, selectors
from payouts.models import LedgerEntry, Payout
from tests.factories import CampaignFactory
from tests.payouts.helpers import convert, fx, plan

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # the factories' password
BANK = {
    "form": "payment",
    "method": "bank",
    "account_name": "Alice Media Ltd",
    "iban": "DE89 3704 0044 0532 0130 00",
    "bic": "DEUTDEFF",
    "password": PASSWORD,
}


@pytest.fixture
def signed_in(client, alice):
    alice.user.email = "alice@example.com"
    alice.user.save()
    client.force_login(alice.user)
    return client


def confirmation_link() -> str:
    (message,) = [m for m in mail.outbox if m.subject == "Confirm your new payment details"]
    return re.search(r"http://testserver(/\S+)", message.body).group(1)


def test_contact_details_are_saved_and_audited(signed_in, alice):
    answer = signed_in.post(
        reverse("affiliate-profile"),
        {
            "form": "contact",
            "email": "billing@alice.example",
            "company": "Alice Media Ltd",
            "vat_id": "de 811907980",
            "country": "de",
            "messenger": "Telegram @alice",
        },
    )

    assert answer.status_code == 302
    alice.refresh_from_db()
    alice.user.refresh_from_db()
    assert (alice.company, alice.vat_id, alice.country) == ("Alice Media Ltd", "DE811907980", "DE")
    assert alice.user.email == "billing@alice.example"
    assert set(AuditEvent.objects.values_list("field", flat=True)) >= {
        "company",
        "vat_id",
        "country",
        "messenger",
        "email",
    }


def test_a_wrong_vat_id_is_refused(signed_in, alice):
    answer = signed_in.post(
        reverse("affiliate-profile"),
        {"form": "contact", "email": "alice@example.com", "vat_id": "DE123"},
    )

    assert answer.status_code == 200 and "Not a valid EU VAT id" in answer.content.decode()
    alice.refresh_from_db()
    assert alice.vat_id == ""


@pytest.mark.parametrize(
    ("fields", "field", "error"),
    [
        ({"iban": "DE89 3704 0044 0532 0130 01"}, "iban", "Not a valid IBAN"),  # check digits
        ({"bic": "DEUT"}, "bic", "Not a valid SWIFT/BIC code"),
        ({"password": "not mine"}, "password", "That is not your password"),
        (
            {"method": "crypto", "network": "ethereum", "wallet": "0x12"},
            "wallet",
            "Not a Ethereum (ERC-20) address",
        ),
    ],
)
def test_bad_payment_details_change_nothing(signed_in, alice, fields, field, error):
    answer = signed_in.post(reverse("affiliate-profile"), {**BANK, **fields})

    assert answer.status_code == 200 and error in answer.content.decode()
    assert not PaymentDetailsChange.objects.exists() and mail.outbox == []


def test_new_details_apply_once_confirmed_by_mail_and_a_manager_releases_the_payout(
    signed_in, alice, manager, django_capture_on_commit_callbacks
):
    # given: alice is owed 50.00 for October
    casino = CampaignFactory(name="Casino DE")
    plan(casino, cpa={"ftd": "50.00"})
    convert(alice, casino, type="ftd", at=datetime(2026, 10, 5, tzinfo=UTC))

    # when: she gives a new bank account; nothing changes until she follows the mailed link
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(reverse("affiliate-profile"), BANK)
    alice.refresh_from_db()
    assert alice.payment_details == ""
    link = confirmation_link()
    assert "IBAN DE89370400440532013000" in mail.outbox[0].body
    shown = signed_in.get(link)  # a mail scanner's GET confirms nothing
    assert b"pay me here from now on" in shown.content
    assert PaymentDetailsChange.objects.get().status == "awaiting_email"
    signed_in.post(link)

    # then: the details are in use, both sides are told, and the payout run holds her balance
    alice.refresh_from_db()
    assert alice.payment_details == (
        "Bank: Alice Media Ltd, IBAN DE89370400440532013000, BIC DEUTDEFF"
    )
    assert Notification.objects.filter(user=alice.user, kind=NoticeKind.PAYMENT_DETAILS).exists()
    assert Notification.objects.filter(user=manager, kind=NoticeKind.PAYMENT_DETAILS).exists()
    october = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 10, 1), period_end=date(2026, 10, 31)
        ).pk
    )
    assert not Payout.objects.filter(run=october).exists()
    (carried,) = selectors.run_summary(run=october).carried
    assert (carried.affiliate, carried.why) == (alice, selectors.HELD_FOR_PAYMENT_DETAILS)

    # when: a manager confirms the change, the next run pays her
    profile.payment_change_approve(change=PaymentDetailsChange.objects.get(), actor=manager)
    november = runs.payout_run_execute(
        run_id=runs.payout_run_create(
            period_start=date(2026, 11, 1), period_end=date(2026, 11, 30)
        ).pk
    )
    assert Payout.objects.get(run=november).amount == 50


def test_a_link_works_once_and_only_for_its_affiliate(
    client, signed_in, alice, charlie, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        signed_in.post(reverse("affiliate-profile"), BANK)
    link = confirmation_link()

    client.force_login(charlie.user)
    client.post(link)
    assert PaymentDetailsChange.objects.get().status == "awaiting_email"

    client.force_login(alice.user)
    client.post(link)
    assert PaymentDetailsChange.objects.get().status == "awaiting_manager"
    again = client.post(link, follow=True)
    assert "used, replaced or too old" in again.content.decode()


def test_the_password_is_changed_from_the_profile(signed_in, alice):
    answer = signed_in.post(
        reverse("affiliate-password"),
        {
            "old_password": PASSWORD,
            "new_password1": "a new and long passphrase 2026",
            "new_password2": "a new and long passphrase 2026",
        },
    )

    assert answer.status_code == 302
    alice.user.refresh_from_db()
    assert alice.user.check_password("a new and long passphrase 2026")


# --- time zone and currency: from the affiliate's next day, with history ------------------------


def test_a_new_time_zone_and_currency_wait_for_the_affiliates_next_day(signed_in, alice):
    # given alice in Berlin, paid in EUR
    alice.time_zone, alice.currency = "Europe/Berlin", "EUR"
    alice.save()

    # when she asks for New York time and USD
    answer = signed_in.post(
        reverse("affiliate-profile"),
        {"form": "settings", "time_zone": "America/New_York", "currency": "USD"},
    )

    # then nothing changes today: both wait for the next midnight in Berlin
    assert answer.status_code == 302
    alice.refresh_from_db()
    assert (alice.time_zone, alice.currency) == ("Europe/Berlin", "EUR")
    berlin = zoneinfo.ZoneInfo("Europe/Berlin")
    midnight = datetime.combine(
        datetime.now(berlin).date() + timedelta(days=1), datetime.min.time(), berlin
    )
    waiting = SettingChange.objects.filter(affiliate=alice).order_by("field")
    assert [(c.field, c.old, c.new, c.effective_at) for c in waiting] == [
        ("currency", "EUR", "USD", midnight),
        ("time_zone", "Europe/Berlin", "America/New_York", midnight),
    ]
    page = signed_in.get(reverse("affiliate-profile")).content.decode()
    assert page.count("waiting") == 2
    assert AuditEvent.objects.filter(field="time_zone", new="America/New_York").exists()

    # a second before midnight nothing is applied; at midnight both are
    assert profile.setting_changes_apply(now=midnight - timedelta(seconds=1)) == 0
    assert profile.setting_changes_apply(now=midnight) == 2
    alice.refresh_from_db()
    assert (alice.time_zone, alice.currency) == ("America/New_York", "USD")
    assert profile.setting_changes_apply(now=midnight + timedelta(hours=1)) == 0  # once
    page = signed_in.get(reverse("affiliate-profile")).content.decode()
    assert page.count("applied") == 2


def test_asking_again_replaces_the_waiting_change_and_asking_back_cancels_it(signed_in, alice):
    url = reverse("affiliate-profile")
    signed_in.post(url, {"form": "settings", "time_zone": "Asia/Tokyo", "currency": "EUR"})
    signed_in.post(url, {"form": "settings", "time_zone": "Europe/Malta", "currency": "EUR"})
    assert list(SettingChange.objects.filter(cancelled_at=None).values_list("new", flat=True)) == [
        "Europe/Malta"
    ]

    signed_in.post(url, {"form": "settings", "time_zone": alice.time_zone, "currency": "EUR"})

    assert not SettingChange.objects.filter(cancelled_at=None).exists()
    assert profile.setting_changes_apply(now=datetime.now(UTC) + timedelta(days=2)) == 0


def test_an_unknown_time_zone_is_refused_and_changes_nothing(signed_in, alice):
    answer = signed_in.post(
        reverse("affiliate-profile"),
        {"form": "settings", "time_zone": "Mars/Olympus", "currency": "EUR"},
    )
    assert answer.status_code == 200
    assert "Select a valid choice" in answer.content.decode()
    assert not SettingChange.objects.exists()


def test_commission_after_the_switch_is_booked_in_the_new_currency(alice):
    # given alice paid in EUR who asked for USD from her next day, and a rate for that day
    campaign = CampaignFactory()
    plan(campaign, cpa={"ftd": "100.00"})
    before = convert(alice, campaign, at=datetime(2026, 10, 5, 12, tzinfo=UTC))
    (change,) = profile.settings_change_request(
        affiliate=alice, changes={"currency": "USD"}, actor=alice.user
    )
    fx(change.effective_at.date(), USD="0.80")  # 1 USD = 0.80 EUR (the base)
    profile.setting_changes_apply(now=change.effective_at)
    alice.refresh_from_db()

    # when an FTD of hers is accrued after it
    after = convert(alice, campaign, at=change.effective_at + timedelta(hours=1))

    # then the earlier entry stays 100 EUR and the new one is 100 EUR in USD: 125.00
    entries = {e.conversion_id: (e.amount, e.currency) for e in LedgerEntry.objects.all()}
    assert entries[before.pk] == (Decimal("100.00"), "EUR")
    assert entries[after.pk] == (Decimal("125.00"), "USD")
