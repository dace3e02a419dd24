"""An affiliate's optional two-factor login (issue 17, point 4).

The one-time codes are worked out here from the key the page shows, by RFC 6238 (TOTP: HMAC-SHA1
over the 30-second step, dynamic truncation, 6 digits; https://www.rfc-editor.org/rfc/rfc6238),
checked first against the RFC's own test vector, not by the library the portal uses.
"""

import base64
import hashlib
import hmac
import re
import struct
import time

import pytest
from django.test import Client
from django.urls import reverse

from affiliates.models import AuditEvent, NoticeKind, Notification
from tests.affiliates.test_notifications import sent  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"  # the factories' password


def totp(key: bytes, at: float | None = None, digits: int = 6) -> str:
    counter = int((time.time() if at is None else at) // 30)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    number = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def test_the_code_helper_meets_the_rfc_vector():
    # RFC 6238 appendix B: SHA1 key "12345678901234567890", T = 59 s -> 94287082
    assert totp(b"12345678901234567890", at=59, digits=8) == "94287082"


def shown_key(page: str) -> bytes:
    secret = re.search(r"data-totp-secret>([A-Z2-7=]+)<", page).group(1)
    return base64.b32decode(secret)


@pytest.fixture
def signed_in(client, alice):
    alice.user.email = "alice@example.com"
    alice.user.save()
    client.force_login(alice.user)
    return client


def turn_on(client) -> bytes:
    page = client.get(reverse("affiliate-two-factor")).content.decode()
    assert "<svg" in page  # the QR code to scan
    key = shown_key(page)
    answer = client.post(
        reverse("affiliate-two-factor"), {"otp_token": totp(key), "password": PASSWORD}
    )
    assert answer.status_code == 302, answer.content.decode()[:2000]
    return key


def test_an_affiliate_turns_it_on_and_is_told(
    signed_in,
    alice,
    sent,  # noqa: F811
    django_capture_on_commit_callbacks,
):
    with django_capture_on_commit_callbacks(execute=True):
        turn_on(signed_in)

    alice.refresh_from_db()
    assert alice.two_factor
    assert AuditEvent.objects.filter(field="two_factor", new="on").exists()
    notice = Notification.objects.get(user=alice.user, kind=NoticeKind.SECURITY)
    assert notice.title == "Two-factor login turned on"
    assert [m.subject for m in sent] == ["Two-factor login turned on"]
    # the session that turned it on gave a code: it stays in
    assert signed_in.get(reverse("affiliate-dashboard")).status_code == 200


def test_a_wrong_code_leaves_it_off(signed_in, alice):
    signed_in.get(reverse("affiliate-two-factor"))
    answer = signed_in.post(
        reverse("affiliate-two-factor"), {"otp_token": "000000", "password": PASSWORD}
    )
    assert "The one-time code is not right." in answer.content.decode()
    alice.refresh_from_db()
    assert not alice.two_factor


def test_once_on_the_login_asks_for_the_code(signed_in, alice):
    key = turn_on(signed_in)
    login = {"username": "alice", "password": PASSWORD}

    # the password alone is not enough
    stranger = Client()
    refused = stranger.post(reverse("login"), login)
    assert refused.status_code == 200
    assert "Enter the one-time code from your authenticator app." in refused.content.decode()
    assert stranger.get(reverse("affiliate-dashboard")).status_code == 302

    # nor is the code already used to turn it on (no replay); the app's next code is
    owner = Client()
    replayed = owner.post(reverse("login"), {**login, "otp_token": totp(key)})
    assert "The one-time code is not right." in replayed.content.decode()
    time.sleep(1.1)  # a wrong code pauses the device's checks for a second (django-otp's throttle)
    answer = owner.post(reverse("login"), {**login, "otp_token": totp(key, time.time() + 30)})
    assert answer.status_code == 302
    assert owner.get(reverse("affiliate-dashboard")).status_code == 200


def test_a_session_opened_before_it_was_turned_on_is_logged_out(signed_in, alice):
    earlier = Client()
    earlier.force_login(alice.user)
    assert earlier.get(reverse("affiliate-dashboard")).status_code == 200

    turn_on(signed_in)

    answer = earlier.get(reverse("affiliate-dashboard"))
    assert answer.status_code == 302
    assert answer["Location"].startswith(reverse("login"))
    assert earlier.get(reverse("affiliate-dashboard"))["Location"].startswith(reverse("login"))


def test_the_api_token_needs_the_code_too(signed_in, alice):
    key = turn_on(signed_in)
    api = Client()
    url = reverse("api-token")

    without = api.post(url, {"username": "alice", "password": PASSWORD})
    assert without.status_code == 400
    code = totp(key, time.time() + 30)  # the next one: the first was used to turn it on
    with_code = api.post(url, {"username": "alice", "password": PASSWORD, "otp_token": code})
    assert with_code.status_code == 200 and with_code.json()["token"]


def test_turning_it_off_takes_the_password_and_a_current_code(signed_in, alice):
    key = turn_on(signed_in)
    url = reverse("affiliate-two-factor")

    code = totp(key, time.time() + 30)
    wrong = signed_in.post(url, {"otp_token": code, "password": "not it"})
    assert "That is not your password." in wrong.content.decode()
    alice.refresh_from_db()
    assert alice.two_factor

    signed_in.post(url, {"otp_token": code, "password": PASSWORD})
    alice.refresh_from_db()
    assert not alice.two_factor
    assert AuditEvent.objects.filter(field="two_factor", new="off").exists()
