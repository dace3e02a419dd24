"""The affiliate's profile (issue 17, point 4): contact details, password change, and payment
details that take effect only through a mailed confirmation and hold the next payout until a
manager checks them. IBANs and BICs are the published examples of their standards' owners
(ECBS: DE89 3704 0044 0532 0130 00; SWIFT: DEUTDEFF)."""

import re
from datetime import UTC, date, datetime

import pytest
from django.core import mail
from django.urls import reverse

from affiliates import profile
from affiliates.models import AuditEvent, NoticeKind, Notification, PaymentDetailsChange
from payouts import runs, selectors
from payouts.models import Payout
from tests.factories import CampaignFactory
from tests.payouts.helpers import convert, plan

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
