"""Every door a stranger can knock on, fuzzed: no answer is a 5xx, and nothing is half-stored.

Postbacks of every kind, Apple's fixed paths, the click redirect, the legacy link paths, the
login, admin-login, sign-up and token forms. (The API is fuzzed by schemathesis from its OpenAPI
schema in tests/api/test_api_schema.py.) Each case the adversarial probe of issue 16 found is an
explicit example, so it runs on every run, whatever hypothesis generates besides.

"Nothing half-stored": a postback answered 200 is one inbox row waiting for the worker; a 400 is
one row stored as rejected (what was sent, for managers); any other answer stores nothing. A click
answered 302 is one click row; any other answer, none. A form that refuses makes no user, no
token, no session.
"""

import json
from urllib.parse import quote

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token

from affiliates.models import LegacyLink
from attribution.models import Click, Postback, PostbackSource
from tests.attribution.test_ingestion_fuzz import JSON_VALUES, KEYS, VALUES
from tests.factories import PostbackSourceFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_throttles():
    # The token endpoint's throttle counts in the cache, which outlives a test.
    cache.clear()
    yield
    cache.clear()


KINDS = ["appsflyer", "adjust", "branch", "singular", "kochava", "s2s"]
FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
NOT_STORED = {403, 404, 405, 411, 413}


@pytest.fixture
def client():
    # A 500 is an answer to look at, not an exception to stop at.
    return Client(raise_request_exception=False)


@pytest.fixture
def sources(db) -> dict[str, PostbackSource]:
    return {kind: PostbackSourceFactory(kind=kind, hmac_secret="") for kind in KINDS}


def _check_postback(response, before: int) -> None:
    assert response.status_code < 500, response.content[:300]
    after = Postback.objects.count()
    if response.status_code in NOT_STORED:
        assert after == before
        return
    body = response.json()
    row = Postback.objects.get(pk=body["id"])
    if response.status_code == 200:
        assert row.status == Postback.Status.RECEIVED
        assert after == before + (1 if body["status"] == "accepted" else 0)
    else:
        assert response.status_code == 400
        assert row.status == Postback.Status.REJECTED
        # A repeat of the same refused bytes is the one row stored the first time.
        assert after in (before, before + 1)
        if after == before + 1:
            assert row.reason == body["error"]


@FUZZ
@given(kind=st.sampled_from(KINDS), params=st.dictionaries(KEYS, VALUES, max_size=8))
@example(kind="s2s", params={"event": "deposit", "txid": "t1", "amount": "1698811507000"})
@example(kind="s2s", params={"event": "deposit", "txid": "t2", "amount": "0.0000001"})
@example(kind="s2s", params={"event": "chargeback", "txid": "t3", "amount": "-5"})
@example(kind="s2s", params={"event": "deposit", "txid": "t4", "amount": "1e12"})
@example(kind="appsflyer", params={"appsflyer_id": "a", "event_revenue": "99999999999999"})
def test_postback_queries(client, sources, kind, params):
    before = Postback.objects.count()
    response = client.get(f"/postbacks/{kind}/{sources[kind].token}/", params)
    _check_postback(response, before)


@FUZZ
@given(kind=st.sampled_from(KINDS), data=st.dictionaries(KEYS, JSON_VALUES, max_size=8))
@example(kind="s2s", data={"event": "deposit", "txid": "d", "amount": "10", "am\x7fount": "1e12"})
@example(kind="s2s", data={"event": "deposit", "txid": "n", "amount": 1e300})
def test_postback_json_bodies(client, sources, kind, data):
    before = Postback.objects.count()
    response = client.post(
        f"/postbacks/{kind}/{sources[kind].token}/",
        json.dumps(data, ensure_ascii=False),
        content_type="application/json",
    )
    _check_postback(response, before)


NESTED = (
    b'--b\r\nContent-Disposition: form-data; name="x"\r\n'
    b"Content-Type: multipart/mixed; boundary=c\r\n\r\n"
    b"--c\r\nContent-Type: text/plain\r\n\r\nhi\r\n--c--\r\n--b--\r\n"
)


@FUZZ
@given(
    kind=st.sampled_from(KINDS),
    body=st.binary(max_size=300),
    content_type=st.sampled_from(
        [
            "application/json",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=b",
            "multipart/form-data",
            "",
        ]
    ),
)
@example(kind="s2s", body=NESTED, content_type="multipart/form-data; boundary=b")
@example(kind="branch", body=b'{"id": "1", "\x00": "\x00"}', content_type="application/json")
def test_postback_raw_bodies(client, sources, kind, body, content_type):
    before = Postback.objects.count()
    response = client.generic(
        "POST", f"/postbacks/{kind}/{sources[kind].token}/", body, content_type=content_type
    )
    _check_postback(response, before)


@FUZZ
@given(
    kind=st.sampled_from([*KINDS, "nope", "%00"]),
    token=st.text(min_size=1, max_size=80).filter(lambda t: "/" not in t),
    signature=st.text(max_size=80),
)
@example(kind="s2s", token="\x00", signature="")
@example(kind="s2s", token="x", signature="sha256=\u00e9t\u00e9")
def test_postback_tokens_and_signatures(client, sources, kind, token, signature):
    signed = sources["s2s"]
    signed.hmac_secret = "s3cret"
    signed.save()
    before = Postback.objects.count()
    path = f"/postbacks/{quote(kind, safe='')}/{quote(token, safe='')}/"
    response = client.get(path, {"event": "reg", "txid": "1"}, HTTP_X_SIGNATURE=signature)
    _check_postback(response, before)
    # and the signed source's real token with the fuzzed signature
    before = Postback.objects.count()
    response = client.get(
        f"/postbacks/s2s/{signed.token}/", {"event": "reg", "txid": "2"},
        HTTP_X_SIGNATURE=signature,
    )  # fmt: skip
    assert response.status_code == 403
    assert Postback.objects.count() == before


@FUZZ
@given(
    path=st.sampled_from(
        [
            "/.well-known/skadnetwork/report-attribution/",
            "/.well-known/appattribution/report-attribution/",
        ]
    ),
    body=st.one_of(
        st.binary(max_size=200),
        st.dictionaries(st.text(max_size=20), JSON_VALUES, max_size=8).map(
            lambda d: json.dumps(d).encode()
        ),
    ),
)
def test_apple_bodies(client, path, body):
    before = Postback.objects.count()
    response = client.generic("POST", path, body, content_type="application/json")
    assert response.status_code < 500
    if response.status_code != 200:
        assert Postback.objects.count() == before


# --- clicks ------------------------------------------------------------------------------------


@pytest.fixture
def link(db):
    return TrackingLinkFactory()


@FUZZ
@given(
    code=st.one_of(st.text(min_size=1, max_size=80), st.just("LINK")),
    params=st.dictionaries(
        st.sampled_from(["sub1", "sub2", "sub5", "gaid", "idfa", "deep_link", "x"]) | st.text(),
        st.text(max_size=300),
        max_size=6,
    ),
    agent=st.text(max_size=200),
)
@example(code="\x00", params={}, agent="")
@example(code="LINK", params={"sub1": '=HYPERLINK("http://x")', "idfa": "\x00"}, agent="\x7f")
def test_clicks(client, link, code, params, agent):
    code = link.code if code == "LINK" else code
    before = Click.objects.count()
    response = client.get(
        f"/c/{quote(code, safe='')}",
        params,
        HTTP_USER_AGENT=agent.encode("utf-8", "replace").decode("latin-1"),
    )
    assert response.status_code in (302, 404, 405)
    assert Click.objects.count() == before + (1 if response.status_code == 302 else 0)


@FUZZ
@given(
    path=st.sampled_from(["/click", "/aff_c", "/go", "/click/"]),
    params=st.dictionaries(
        st.sampled_from(["offer_id", "aff_id", "pid", "aff_sub", "sub1", "idfa"]) | st.text(),
        st.text(max_size=100),
        max_size=6,
    ),
)
@example(path="/click", params={"offer_id": "\x00", "aff_id": "1"})
def test_legacy_links(client, link, path, params):
    LegacyLink.objects.get_or_create(
        path="/click", key="aff_id=1&offer_id=45", defaults={"link": link}
    )
    before = Click.objects.count()
    response = client.get(path, params)
    assert response.status_code in (302, 404, 405)
    assert Click.objects.count() == before  # a legacy link only redirects to /c/


# --- the forms that take passwords ---------------------------------------------------------------


@FUZZ
@given(
    door=st.sampled_from(["/login/", "/admin/login/", "/api/v1/auth/token/", "/signup/"]),
    fields=st.fixed_dictionaries(
        {
            "username": st.one_of(st.text(max_size=300), st.just("u" * 300)),
            "password": st.text(max_size=100),
        },
        optional={
            "otp_token": st.text(max_size=20),
            "email": st.text(max_size=80),
            "password1": st.text(max_size=40),
            "password2": st.text(max_size=40),
            "name": st.text(max_size=250),
            "time_zone": st.text(max_size=40),
        },
    ),
)
@example(door="/login/", fields={"username": "u" * 300, "password": "x"})
@example(door="/admin/login/", fields={"username": "u" * 300, "password": "x"})
@example(door="/api/v1/auth/token/", fields={"username": "u" * 300, "password": "x"})
@example(door="/api/v1/auth/token/", fields={"username": "manager", "password": "x\x00"})
def test_password_forms(client, manager, door, fields):
    users = get_user_model().objects.count()
    response = client.post(door, fields)

    assert response.status_code < 500, response.content[:300]
    assert not Token.objects.exists()
    assert "_auth_user_id" not in client.session
    created = get_user_model().objects.count() - users
    assert created == 0 or (door == "/signup/" and response.status_code == 302)
