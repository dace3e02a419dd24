"""Tokens: traded for a username and password, throttled, and useless to the inactive."""

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from affiliates.models import Affiliate

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # tests.factories.UserFactory's


def test_an_affiliate_trades_its_password_for_its_token_and_uses_it(alice):
    client = APIClient()

    response = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=alice.user).key}
    client.credentials(HTTP_AUTHORIZATION=f"Token {response.json()['token']}")
    assert client.get("/api/v1/links/").status_code == 200


def test_asking_again_gives_the_same_token(alice):
    client = APIClient()
    body = {"username": "alice", "password": PASSWORD}

    first = client.post("/api/v1/auth/token/", body, format="json").json()
    second = client.post("/api/v1/auth/token/", body).json()  # a form post works too

    assert first == second


def test_a_wrong_password_gets_no_token(alice):
    response = APIClient().post(
        "/api/v1/auth/token/", {"username": "alice", "password": "guess"}, format="json"
    )

    assert response.status_code == 400
    assert "token" not in response.json()
    assert not Token.objects.exists()


def test_repeated_wrong_passwords_lock_the_account_out_of_the_api_too(alice):
    client = APIClient()
    for _ in range(5):
        client.post("/api/v1/auth/token/", {"username": "alice", "password": "guess"})

    response = client.post("/api/v1/auth/token/", {"username": "alice", "password": PASSWORD})

    assert response.status_code == 400
    assert not Token.objects.exists()


def test_token_requests_are_throttled_per_address(alice):
    client = APIClient()
    body = {"username": "alice", "password": PASSWORD}

    answers = [client.post("/api/v1/auth/token/", body).status_code for _ in range(11)]

    assert answers == [200] * 10 + [429]


def test_a_pending_affiliate_gets_a_token_that_opens_nothing_yet(dave):
    client = APIClient()
    token = client.post("/api/v1/auth/token/", {"username": "dave", "password": PASSWORD}).json()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token['token']}")

    assert client.get("/api/v1/stats/").status_code == 403

    Affiliate.objects.filter(pk=dave.pk).update(status=Affiliate.Status.ACTIVE)
    assert client.get("/api/v1/stats/").status_code == 200


def test_a_bad_token_is_a_401(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")

    assert client.get("/api/v1/links/").status_code == 401


def test_a_signed_in_session_works_too(client, alice):
    client.force_login(alice.user)

    assert client.get("/api/v1/links/").status_code == 200
