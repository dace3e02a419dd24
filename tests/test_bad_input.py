"""Bad input is answered as a user would expect: a 4xx with the reason, never a 500, and nothing
is stored that should not be. Each case is one the adversarial probe of issue 16 found."""

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.handlers.wsgi import WSGIRequest
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.authtoken.models import Token

from affiliates.models import Affiliate
from attribution import views
from attribution.ingestion import door
from attribution.models import Click, Conversion, Postback
from attribution.outbound import safe_http
from payouts import ledger
from payouts.models import LedgerEntry
from tests.conftest import staff_login
from tests.factories import ConversionFactory, TrackingLinkFactory

pytestmark = pytest.mark.django_db

LONG_USERNAME = "u" * 300


@pytest.fixture
def client():
    # A 500 is an answer here, not an exception: the tests look at what the sender gets.
    return Client(raise_request_exception=False)


# --- logins ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/login/", "/admin/login/"])
def test_a_username_over_255_characters_is_a_failed_login_not_a_500(client, path, alice):
    response = client.post(path, {"username": LONG_USERNAME, "password": "x"})

    assert response.status_code == 200
    assert b"correct username and password" in response.content
    assert "_auth_user_id" not in client.session


def test_a_username_over_255_characters_gets_no_token(client, alice):
    response = client.post(
        "/api/v1/auth/token/", {"username": LONG_USERNAME, "password": "x"}, format="json"
    )

    assert response.status_code == 400
    assert "non_field_errors" in response.json()
    assert not Token.objects.exists()


# --- the click and postback doors ---------------------------------------------------------------


def test_a_link_code_with_a_nul_is_a_404_and_no_click(client):
    TrackingLinkFactory()

    response = client.get("/c/%00")

    assert response.status_code == 404
    assert not Click.objects.exists()


@pytest.mark.parametrize("token", ["%00", "a%00b", "%C3%A9t%C3%A9", "x" * 80])
def test_a_postback_token_that_cannot_be_one_is_a_404_not_a_503(client, s2s, token):
    response = client.get(f"/postbacks/s2s/{token}/?event=reg&txid=1")

    assert response.status_code == 404
    assert response.json()["error"] == "unknown token for this source"
    assert not Postback.objects.exists()


def test_a_nested_multipart_postback_is_a_400(client, s2s):
    body = (
        "--b\r\n"
        'Content-Disposition: form-data; name="x"\r\n'
        "Content-Type: multipart/mixed; boundary=c\r\n\r\n"
        "--c\r\nContent-Type: text/plain\r\n\r\nhi\r\n--c--\r\n"
        "--b--\r\n"
    )

    response = client.post(
        f"/postbacks/s2s/{s2s.token}/", body, content_type="multipart/form-data; boundary=b"
    )

    assert response.status_code == 400
    assert "nested multipart" in response.json()["error"]
    assert not Postback.objects.filter(status=Postback.Status.RECEIVED).exists()


def test_a_non_ascii_signature_is_a_403(client, s2s):
    s2s.hmac_secret = "s3cret"
    s2s.save()

    response = client.get(
        f"/postbacks/s2s/{s2s.token}/?event=reg&txid=1", HTTP_X_SIGNATURE="sha256=\u00e9t\u00e9"
    )

    assert response.status_code == 403
    assert "X-Signature" in response.json()["error"]
    assert not Postback.objects.exists()


def _chunked_request(body: bytes, *, terminated: bool, path: str) -> WSGIRequest:
    """A request as gunicorn hands over a chunked upload: no Content-Length, the input de-chunked
    and ``wsgi.input_terminated`` set (a server that cannot de-chunk leaves it unset)."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": path,
        "SERVER_NAME": "testserver",
        "SERVER_PORT": "80",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(body),
        "HTTP_TRANSFER_ENCODING": "chunked",
        "CONTENT_TYPE": "application/json",
        "REMOTE_ADDR": "203.0.113.9",
    }
    if terminated:
        environ["wsgi.input_terminated"] = True
    return WSGIRequest(environ)


def test_a_chunked_postback_body_is_read_whole(s2s):
    path = f"/postbacks/s2s/{s2s.token}/"
    body = b'{"event": "reg", "txid": "chunked-1", "click_id": "abc"}'

    response = views.postback(_chunked_request(body, terminated=True, path=path), "s2s", s2s.token)

    assert response.status_code == 200, response.content
    assert Postback.objects.get().body == body.decode()


def test_a_chunked_body_a_server_did_not_de_chunk_is_a_411(s2s):
    path = f"/postbacks/s2s/{s2s.token}/"

    response = views.postback(
        _chunked_request(b"{}", terminated=False, path=path), "s2s", s2s.token
    )

    assert response.status_code == 411
    assert not Postback.objects.exists()


def test_a_chunked_body_over_the_cap_is_a_413(s2s):
    path = f"/postbacks/s2s/{s2s.token}/"
    body = b'{"event": "reg", "txid": "' + b"x" * door.MAX_BODY + b'"}'

    response = views.postback(_chunked_request(body, terminated=True, path=path), "s2s", s2s.token)

    assert response.status_code == 413
    assert not Postback.objects.exists()


# --- the API -----------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["+23:00", "-23:59", "+16:30"])
def test_an_api_time_with_any_iso_offset_filters_in_utc(client, alice, offset):
    at = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
    ConversionFactory(affiliate=alice, occurred_at=at)
    client.force_login(alice.user)
    given = datetime.fromisoformat(f"2026-11-02T12:00:00{offset}")

    response = client.get("/api/v1/conversions/", {"occurred_after": given.isoformat()})

    assert response.status_code == 200
    assert response.json()["count"] == (1 if given <= at else 0)


def test_an_api_time_offset_beyond_a_day_is_a_400(client, alice):
    client.force_login(alice.user)

    response = client.get("/api/v1/conversions/", {"occurred_after": "2026-11-02T12:00:00+24:00"})

    assert response.status_code == 400


# --- sign-up -----------------------------------------------------------------------------------


def _apply(client, **overrides):
    data = {
        "username": "newbie",
        "email": "new@example.com",
        "password1": "a-Long-passw0rd!",
        "password2": "a-Long-passw0rd!",
        "name": "Newbie Media",
        "time_zone": "Europe/Malta",
        "currency": "EUR",
        "country": "MT",
        "traffic_sources": "Casino reviews in Maltese",
        **overrides,
    }
    return client.post(reverse("signup"), data)


def test_sign_up_answers_alike_whether_or_not_an_account_exists(client, alice):
    # when a new affiliate applies, and others apply with alice's username or alice's email
    new = _apply(client)
    same_username = _apply(client, username="alice", email="other@example.com")
    same_email = _apply(client, username="someone", email=alice.user.email.upper())

    # then every answer is the same page, which names nobody
    assert {r.status_code for r in (new, same_username, same_email)} == {302}
    assert {r["Location"] for r in (new, same_username, same_email)} == {reverse("signup-done")}
    done = client.get(reverse("signup-done"))
    assert done.status_code == 200
    assert b"alice" not in done.content
    # and only the new one has an account; the mail to each address says what happened
    assert list(
        get_user_model().objects.order_by("username").values_list("username", flat=True)
    ) == [
        "alice",
        "newbie",
    ]
    assert Affiliate.objects.get(user__username="newbie").status == "pending"
    by_address = {m.to[0]: m for m in mail.outbox}
    assert "Thanks for applying" in by_address["new@example.com"].body
    assert "has an account here already" in by_address["other@example.com"].body
    assert "password" in by_address[alice.user.email].body


def test_sign_up_still_says_what_is_wrong_with_the_form(client):
    response = _apply(client, password2="something else")

    assert response.status_code == 200
    assert not get_user_model().objects.exists()


# --- pages -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/login/", "/signup/", "/admin/login/", "/api/docs/", "/healthz", "/c/nope"]
)
def test_every_page_has_a_content_security_policy(client, path):
    response = client.get(path)

    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy


def test_no_page_has_an_inline_script(client, alice, manager):
    pages = [client.get("/login/")]
    client.force_login(alice.user)
    pages += [client.get(p) for p in ("/dashboard/", "/dashboard/links/")]
    staff_login(client, manager)
    pages += [client.get(p) for p in ("/admin/", "/api/docs/")]
    for page in pages:
        assert page.status_code == 200
        html = page.content.decode()
        assert "<script>" not in html and "onclick=" not in html


def test_the_dashboard_is_served_when_the_build_left_the_chart_out(
    client, alice, settings, tmp_path
):
    # given production's manifest storage, collected without npm's chart.js (`npm ci` skipped)
    settings.STATIC_ROOT = str(tmp_path)
    settings.STATICFILES_DIRS = [str(settings.BASE_DIR / "static")]
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)

    # when alice opens her dashboard
    client.force_login(alice.user)
    response = client.get("/dashboard/")

    # then she gets it, without the chart's script, with the numbers
    assert response.status_code == 200
    assert b"chart.umd" not in response.content
    assert b"dashboard." in response.content  # the page's own script, by its hashed name


# --- money -------------------------------------------------------------------------------------


def test_a_month_still_in_progress_cannot_be_closed(alice):
    this_month = timezone.now().date().replace(day=1)

    with pytest.raises(ledger.MonthOpen, match="is not over yet"):
        ledger.month_close(period=this_month)
    with pytest.raises(CommandError, match="is not over yet"):
        call_command("close_month", f"{this_month:%Y-%m}")
    assert not LedgerEntry.objects.exists()


def test_a_month_is_open_until_it_has_ended_in_every_time_zone():
    assert ledger.month_over_at(date(2026, 10, 1)) == datetime(2026, 11, 1, 12, tzinfo=UTC)
    assert ledger.month_over_at(date(2026, 12, 17)) == datetime(2027, 1, 1, 12, tzinfo=UTC)


def test_a_past_month_closes(alice):
    past = (timezone.now() - timedelta(days=45)).date().replace(day=1)

    made = ledger.month_close(period=past)
    assert made["revshare"] == made["tiers"] == 0  # closed, with nothing to book
    assert not Conversion.objects.exists()


# --- outbound ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "[2002:7f00:1::1]",  # 6to4 of 127.0.0.1
        "[2002:a9fe:a9fe::1]",  # 6to4 of the metadata address
        "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",  # Teredo
        "[64:ff9b::a9fe:a9fe]",  # NAT64 of the metadata address
        "[64:ff9b:1::a00:1]",  # NAT64, local use
        "[::127.0.0.1]",  # IPv4-compatible
        "[::ffff:10.0.0.1]",  # IPv4-mapped
        "[::ffff:0:a00:1]",  # IPv4-translated
        "[2606:4700::5efe:a00:1]",  # ISATAP
        "192.88.99.1",  # the 6to4 relay
    ],
)
def test_an_outbound_url_through_a_tunnel_to_ipv4_is_refused(address):
    with pytest.raises(safe_http.Refused, match="non-public address"):
        safe_http.resolve(f"http://{address}/postback")
