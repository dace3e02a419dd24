"""A manager's password alone opens no manager door: the admin, /login/, the token endpoint and
the API all want the one-time code from the manager's authenticator (TOTP)."""

from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # The token endpoint's throttle counts in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


@pytest.fixture
def device(manager) -> TOTPDevice:
    return TOTPDevice.objects.create(user=manager, name="phone", confirmed=True)


def code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, digits=device.digits):0{device.digits}d}"


def is_logged_in(client) -> bool:
    return "_auth_user_id" in client.session


# --- /login/ -----------------------------------------------------------------------------------


def test_a_managers_password_alone_does_not_log_in_at_the_login_page(client, manager, device):
    response = client.post(reverse("login"), {"username": "manager", "password": PASSWORD})

    assert response.status_code == 200
    assert b"one-time code" in response.content
    assert not is_logged_in(client)


def test_a_wrong_code_does_not_log_a_manager_in(client, manager, device):
    response = client.post(
        reverse("login"), {"username": "manager", "password": PASSWORD, "otp_token": "000000"}
    )

    assert response.status_code == 200
    assert b"not right" in response.content
    assert not is_logged_in(client)


def test_password_and_code_make_a_verified_manager_session(client, manager, device):
    response = client.post(
        reverse("login"),
        {"username": "manager", "password": PASSWORD, "otp_token": code(device)},
    )

    assert response.status_code == 302
    assert is_logged_in(client)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get("/api/v1/affiliates/").status_code == 200


def test_affiliates_log_in_with_their_password_alone(client, alice):
    response = client.post(reverse("login"), {"username": "alice", "password": PASSWORD})

    assert response.status_code == 302
    assert is_logged_in(client)


def test_wrong_passwords_never_reach_the_managers_authenticator(client, manager, device):
    # A stranger without the password cannot run the device into its throttle.
    for _ in range(4):
        client.post(
            reverse("login"), {"username": "manager", "password": "guess", "otp_token": "000000"}
        )
        APIClient().post(
            "/api/v1/auth/token/",
            {"username": "manager", "password": "guess", "otp_token": "000000"},
        )

    device.refresh_from_db()
    assert device.throttling_failure_count == 0
    assert device.verify_is_allowed()[0]


# --- the admin ---------------------------------------------------------------------------------


def test_a_managers_password_alone_does_not_open_the_admin(client, manager, device):
    response = client.post(
        reverse("admin:login"), {"username": "manager", "password": PASSWORD}, follow=True
    )

    assert client.get(reverse("admin:index")).status_code == 302
    assert b"otp_token" in response.content


def test_a_password_only_session_from_elsewhere_opens_no_manager_door(client, manager):
    client.force_login(manager)  # as a session made before this rule, or by a password alone

    assert client.get(reverse("admin:index")).status_code == 302
    assert client.get("/api/v1/affiliates/").status_code == 403
    assert client.get("/api/v1/conversions/").status_code == 403


# --- the API -----------------------------------------------------------------------------------


def test_a_managers_password_alone_gets_no_token(manager, device):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "manager", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 400
    assert "one-time code" in response.json()["otp_token"][0]
    assert not Token.objects.exists()


def test_a_manager_without_an_authenticator_gets_no_token(manager):
    response = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "manager", "password": PASSWORD, "otp_token": "123456"},
        format="json",
    )

    assert response.status_code == 400
    assert "No authenticator" in response.json()["otp_token"][0]
    assert not Token.objects.exists()


def test_a_managers_token_needs_the_code_and_lasts_a_few_hours(manager, device, settings):
    # when the manager gives password and code
    client = APIClient()
    response = client.post(
        "/api/v1/auth/token/",
        {"username": "manager", "password": PASSWORD, "otp_token": code(device)},
        format="json",
    )

    # then the token opens the manager's endpoints
    assert response.status_code == 200
    key = response.json()["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/affiliates/").status_code == 200

    # until it is older than STAFF_TOKEN_HOURS
    Token.objects.filter(key=key).update(
        created=timezone.now() - timedelta(hours=settings.STAFF_TOKEN_HOURS, minutes=1)
    )
    expired = client.get("/api/v1/affiliates/")
    assert expired.status_code == 401
    assert "one-time code" in expired.json()["detail"]


def test_a_second_staff_user_without_a_code_cannot_use_anothers_session_rules(client):
    # A staff user with no authenticator at all: nothing at any door.
    UserFactory(username="helper", is_staff=True)

    client.post(reverse("login"), {"username": "helper", "password": PASSWORD})
    token = APIClient().post("/api/v1/auth/token/", {"username": "helper", "password": PASSWORD})

    assert not is_logged_in(client)
    assert token.status_code == 400
    assert not Token.objects.exists()
