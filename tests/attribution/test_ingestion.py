"""Postbacks over HTTP: what each sender gets back, and what is stored."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, connections
from django.utils import timezone

from attribution.ingestion import door
from attribution.ingestion.tokens import source_rotate_token
from attribution.models import Postback, PostbackEvent, PostbackSource
from attribution.processing import single
from tests.attribution import payloads
from tests.factories import AppFactory, PostbackSourceFactory

pytestmark = pytest.mark.django_db


def url(source: PostbackSource) -> str:
    return f"/postbacks/{source.kind}/{source.token}/"


def process(response) -> PostbackEvent:
    """Run the worker's step on the stored row, as the Celery task does."""
    postback_id = response.json()["id"]
    assert single.postback_process(postback_id=postback_id) == "processed"
    return PostbackEvent.objects.get(postback_id=postback_id)


# --- every sender, as it really sends -------------------------------------------------------


def test_appsflyer_install_by_get_is_stored_and_normalised(client):
    app = AppFactory(platform="ios", app_store_id="1234567890")
    source = PostbackSourceFactory(kind="appsflyer", app=app)

    response = client.get(url(source) + "?" + payloads.APPSFLYER_INSTALL)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "accepted"
    row = Postback.objects.get(pk=body["id"])
    assert row.status == Postback.Status.RECEIVED
    assert row.method == "GET"
    assert row.query == payloads.APPSFLYER_INSTALL
    assert row.source == source
    assert row.dedup_key.startswith("af:1698811503838-6471005703857226630:")
    event = process(response)
    row.refresh_from_db()
    assert row.status == Postback.Status.PROCESSED
    assert (event.kind, event.conversion_type) == ("install", "install")
    assert event.click_id == payloads.CLICK_ID
    assert event.idfa == "8C6CBC0D-5F43-4765-A6E6-84DFF3D24707"
    assert event.occurred_at == datetime.fromtimestamp(1698811507, tz=UTC)
    assert (event.app, event.platform, event.country) == (app, "ios", "DE")
    assert event.touch_type == "click"


def test_appsflyer_in_app_event_carries_exact_revenue(client):
    source = PostbackSourceFactory(kind="appsflyer")
    response = client.get(url(source) + "?" + payloads.APPSFLYER_EVENT)
    assert response.json()["status"] == "accepted"
    event = process(response)
    assert (event.kind, event.event_name, event.conversion_type) == (
        "event",
        "af_purchase",
        "purchase",
    )
    assert event.revenue == Decimal("4.99")
    assert event.currency == "EUR"


def test_appsflyer_push_api_by_post_json_uses_the_sources_event_mapping(client):
    source = PostbackSourceFactory(kind="appsflyer", event_mapping={"AF_First_Deposit": "ftd"})
    response = client.post(
        url(source), payloads.APPSFLYER_PUSH_API, content_type="application/json"
    )
    assert response.status_code == 200
    row = Postback.objects.get(pk=response.json()["id"])
    assert (row.method, row.body) == ("POST", payloads.APPSFLYER_PUSH_API)
    event = process(response)
    assert event.conversion_type == "ftd"
    assert event.revenue == Decimal("50")
    assert event.player_id == "player-77"


def test_adjust_event_callback(client):
    source = PostbackSourceFactory(kind="adjust", event_mapping={"ftd": "ftd"})
    response = client.get(url(source) + "?" + payloads.ADJUST_EVENT)
    assert response.json()["status"] == "accepted"
    event = process(response)
    assert (event.kind, event.conversion_type) == ("event", "ftd")
    assert event.mmp_device_id == "18546f6171f67e29d1cb983322ad1329"
    assert event.gaid == "38400000-8cf0-11bd-b23e-10b96e40000d"
    assert event.revenue == Decimal("50.00")
    assert event.occurred_at == datetime.fromtimestamp(1404214665, tz=UTC)


def test_adjust_install_with_an_unfilled_placeholder(client):
    source = PostbackSourceFactory(kind="adjust")
    event = process(client.get(url(source) + "?" + payloads.ADJUST_INSTALL))
    assert event.kind == "install"
    assert event.idfa == ""  # "{idfa}" arrived literally: absent
    assert event.country == "DE"


def test_branch_webhook_by_post_json(client):
    source = PostbackSourceFactory(kind="branch")
    response = client.post(url(source), payloads.BRANCH_PURCHASE, content_type="application/json")
    assert response.json()["status"] == "accepted"
    assert Postback.objects.get().dedup_key == "branch:1234567890123456789"
    event = process(response)
    assert (event.kind, event.conversion_type) == ("event", "purchase")
    assert event.click_id == payloads.CLICK_ID
    assert event.revenue == Decimal("19.99")
    assert event.currency == "GBP"
    assert event.occurred_at == datetime.fromtimestamp(1698811507, tz=UTC)
    assert event.touch_time == datetime.fromtimestamp(1698811400, tz=UTC)


def test_singular_install_by_get(client):
    source = PostbackSourceFactory(kind="singular")
    event = process(client.get(url(source) + "?" + payloads.SINGULAR_INSTALL))
    assert event.kind == "install"
    assert event.click_id == payloads.CLICK_ID
    assert event.revenue is None  # "{AMOUNT}" unfilled


def test_kochava_install_by_get_and_post(client):
    source = PostbackSourceFactory(kind="kochava")
    event = process(client.get(url(source) + "?" + payloads.KOCHAVA_INSTALL))
    assert event.kind == "install"
    assert event.mmp_device_id == "KD123"
    form = dict(pair.split("=", 1) for pair in payloads.KOCHAVA_INSTALL.split("&"))
    form["event_name"] = "purchase"
    form["event_time"] = "1698811999"
    posted = client.post(url(source), form)
    assert posted.json()["status"] == "accepted"
    assert process(posted).conversion_type == "purchase"


def test_operator_backend_by_get_form_and_json(client):
    source = PostbackSourceFactory(kind="s2s", event_mapping={"ftd": "ftd"})
    by_get = client.get(url(source) + "?" + payloads.S2S_FTD)
    by_json = client.post(url(source), payloads.S2S_FTD_JSON, content_type="application/json")
    by_form = client.post(url(source), {"click_id": "c-3", "event": "level_up", "txid": "lv-3"})

    assert [r.status_code for r in (by_get, by_json, by_form)] == [200, 200, 200]
    ftd = process(by_get)
    assert (ftd.conversion_type, ftd.txid, ftd.player_id) == ("ftd", "dep-1001", "p-1")
    assert ftd.revenue == Decimal("100.50")
    assert process(by_json).txid == "dep-2002"
    assert process(by_form).conversion_type == "custom"  # neither mapped nor a known name


# --- repeats ---------------------------------------------------------------------------------


def test_a_repeated_postback_answers_200_duplicate_and_stores_nothing_new(client):
    source = PostbackSourceFactory(kind="appsflyer")
    first = client.get(url(source) + "?" + payloads.APPSFLYER_INSTALL)
    second = client.get(url(source) + "?" + payloads.APPSFLYER_INSTALL)
    assert second.status_code == 200
    assert second.json() == {"status": "duplicate", "id": first.json()["id"]}
    assert Postback.objects.count() == 1


def test_a_repeat_with_reordered_parameters_is_still_a_duplicate(client):
    source = PostbackSourceFactory(kind="appsflyer")
    client.get(url(source) + "?" + payloads.APPSFLYER_INSTALL)
    reordered = "&".join(reversed(payloads.APPSFLYER_INSTALL.split("&")))
    assert client.get(url(source) + "?" + reordered).json()["status"] == "duplicate"


def test_the_same_key_from_two_sources_is_two_postbacks(client):
    one, two = PostbackSourceFactory(kind="s2s"), PostbackSourceFactory(kind="s2s")
    client.get(url(one) + "?" + payloads.S2S_FTD)
    assert client.get(url(two) + "?" + payloads.S2S_FTD).json()["status"] == "accepted"


def test_processing_twice_makes_one_event(client):
    source = PostbackSourceFactory(kind="s2s")
    response = client.get(url(source) + "?" + payloads.S2S_FTD)
    process(response)
    assert single.postback_process(postback_id=response.json()["id"]) == "skipped"
    assert PostbackEvent.objects.count() == 1


# --- refusals --------------------------------------------------------------------------------


def test_an_unknown_token_is_404_and_stores_nothing(client):
    PostbackSourceFactory(kind="appsflyer")
    response = client.get("/postbacks/appsflyer/not-a-token/?" + payloads.APPSFLYER_INSTALL)
    assert response.status_code == 404
    assert "token" in response.json()["error"]
    assert Postback.objects.count() == 0


def test_a_token_of_another_kind_is_404(client):
    source = PostbackSourceFactory(kind="adjust")
    response = client.get(f"/postbacks/appsflyer/{source.token}/?" + payloads.APPSFLYER_INSTALL)
    assert response.status_code == 404


def test_an_unknown_source_is_404(client):
    response = client.get("/postbacks/tune/abc/")
    assert response.status_code == 404
    assert response.json()["error"]


def test_a_malformed_postback_is_400_and_stored_rejected_with_the_reason(client):
    source = PostbackSourceFactory(kind="appsflyer")
    # No id of any kind (AppsFlyer id, click id, device id): nothing to attribute it by.
    response = client.get(url(source) + "?platform=ios&country_code=DE")
    assert response.status_code == 400
    body = response.json()
    assert body["status"] == "rejected"
    assert "appsflyer_id" in body["error"]
    row = Postback.objects.get(pk=body["id"])
    assert row.status == Postback.Status.REJECTED
    assert row.reason == body["error"]
    assert row.query == "platform=ios&country_code=DE"


def test_a_retried_malformed_postback_is_stored_once(client):
    source = PostbackSourceFactory(kind="s2s")
    for _ in range(3):
        assert client.get(url(source) + "?event=ftd").status_code == 400
    assert Postback.objects.count() == 1


def test_malformed_json_is_400_naming_the_problem(client):
    source = PostbackSourceFactory(kind="branch")
    response = client.post(url(source), "{not json", content_type="application/json")
    assert response.status_code == 400
    assert "JSON" in response.json()["error"]
    response = client.post(url(source), "[1, 2]", content_type="application/json")
    assert response.json()["error"] == "body must be a JSON object"


def test_an_oversized_body_is_413_and_stores_nothing(client):
    source = PostbackSourceFactory(kind="branch")
    response = client.post(url(source), "x" * (door.MAX_BODY + 1), content_type="text/plain")
    assert response.status_code == 413
    assert Postback.objects.count() == 0


def test_other_methods_are_405_in_json(client):
    source = PostbackSourceFactory(kind="s2s")
    response = client.put(url(source))
    assert response.status_code == 405
    assert response.json()["error"]


def test_a_disabled_integration_is_403(client):
    source = PostbackSourceFactory(kind="s2s", is_active=False)
    assert client.get(url(source) + "?" + payloads.S2S_FTD).status_code == 403
    assert Postback.objects.count() == 0


def test_a_sender_outside_the_allowed_networks_is_403(client):
    source = PostbackSourceFactory(kind="appsflyer", allowed_networks="45.92.116.0/22\n10.1.0.0/16")
    denied = client.get(url(source) + "?" + payloads.APPSFLYER_INSTALL)
    allowed = client.get(url(source) + "?" + payloads.APPSFLYER_INSTALL, REMOTE_ADDR="45.92.117.8")
    assert denied.status_code == 403
    assert "not allowed" in denied.json()["error"]
    assert allowed.status_code == 200


def _sign(secret: str, message: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def test_a_signed_s2s_post_is_verified_over_the_raw_body(client):
    source = PostbackSourceFactory(kind="s2s", hmac_secret="s3cret")
    body = payloads.S2S_FTD_JSON.encode()
    good = client.post(
        url(source), body, content_type="application/json", HTTP_X_SIGNATURE=_sign("s3cret", body)
    )
    bad = client.post(
        url(source), body, content_type="application/json", HTTP_X_SIGNATURE=_sign("wrong", body)
    )
    unsigned = client.post(url(source), body, content_type="application/json")
    assert good.status_code == 200
    assert (bad.status_code, unsigned.status_code) == (403, 403)
    assert Postback.objects.count() == 1


def test_a_signed_s2s_get_is_verified_over_the_query_string(client):
    source = PostbackSourceFactory(kind="s2s", hmac_secret="s3cret")
    query = payloads.S2S_FTD
    good = client.get(url(source) + "?" + query, HTTP_X_SIGNATURE=_sign("s3cret", query.encode()))
    tampered = client.get(
        url(source) + "?" + query.replace("100.50", "900.50"),
        HTTP_X_SIGNATURE=_sign("s3cret", query.encode()),
    )
    assert (good.status_code, tampered.status_code) == (200, 403)


def test_a_rotated_token_keeps_working_for_its_grace_period(client):
    source = PostbackSourceFactory(kind="s2s")
    old = source.token
    source_rotate_token(source=source)
    assert client.get(f"/postbacks/s2s/{old}/?" + payloads.S2S_FTD).status_code == 200
    assert client.get(url(source) + "?" + payloads.S2S_FTD).json()["status"] == "duplicate"
    # the web process keeps the source it found, but not past the old token's deadline
    later = timezone.now() + timedelta(days=7, seconds=1)
    assert door.find_source(kind="s2s", token=old, now=later) is None
    assert door.find_source(kind="s2s", token=source.token, now=later).pk == source.pk
    source.previous_token_valid_until = timezone.now() - timedelta(seconds=1)
    source.save(update_fields=["previous_token_valid_until"])
    assert client.get(f"/postbacks/s2s/{old}/?" + payloads.S2S_FTD).status_code == 404


def test_a_change_to_a_source_takes_effect_at_once_in_the_process_that_made_it(client):
    # given a source whose token this process has just looked up (and keeps)
    source = PostbackSourceFactory(kind="s2s")
    assert client.get(url(source) + "?" + payloads.S2S_FTD).status_code == 200

    # when a manager disables it, and then gives it a secret instead
    source.is_active = False
    source.save()
    disabled = client.get(url(source) + "?" + payloads.S2S_FTD.replace("dep-1001", "dep-2"))
    source.is_active, source.hmac_secret = True, "s3cret"
    source.save()
    unsigned = client.get(url(source) + "?" + payloads.S2S_FTD.replace("dep-1001", "dep-3"))

    # then neither waits for the kept copy to expire
    assert disabled.status_code == 403
    assert unsigned.status_code == 403
    assert Postback.objects.count() == 1


def test_the_trailing_slash_is_optional_for_a_post(client):
    source = PostbackSourceFactory(kind="branch")
    response = client.post(
        url(source).rstrip("/"), payloads.BRANCH_PURCHASE, content_type="application/json"
    )
    assert response.status_code == 200


def test_nul_bytes_anywhere_are_refused_clearly_and_still_stored(client):
    source = PostbackSourceFactory(kind="s2s")
    by_get = client.get(url(source) + "?click_id=a%00b&event=ftd&txid=t-1&amount=1")
    by_json = client.post(
        url(source),
        json.dumps({"click_id": "x", "event": "ftd", "txid": "t\u00002"}),
        content_type="application/json",
        HTTP_X_CUSTOM="a\x01b",
    )
    assert (by_get.status_code, by_json.status_code) == (400, 400)
    assert "control characters" in by_get.json()["error"]
    rows = Postback.objects.order_by("pk")
    assert [r.status for r in rows] == ["rejected", "rejected"]
    assert "\x00" not in rows[1].body + json.dumps(rows[1].headers)


@pytest.mark.django_db(transaction=True)
def test_when_the_database_is_down_the_answer_is_503(client):
    source = PostbackSourceFactory(kind="s2s")
    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent/dir/portal.sqlite3"
    else:
        connection.settings_dict["PORT"] = "1"  # nothing listens there
    try:
        response = client.get(url(source) + "?" + payloads.S2S_FTD)
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503
    assert response["Retry-After"]
    assert "retry" in response.json()["error"]
    assert Postback.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_postback_on_a_kept_connection_the_database_dropped_is_still_stored(client):
    # given a kept database connection that the server has since closed (a restart, a failover)
    source = PostbackSourceFactory(kind="s2s")
    assert client.get(url(source) + "?" + payloads.S2S_FTD).status_code == 200
    pid = connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()

    # when the next postback arrives (a server's request start, which the test client skips)
    close_old_connections()
    response = client.get(url(source) + "?" + payloads.S2S_FTD.replace("dep-1001", "dep-1002"))

    # then it is looked up again on a new connection and stored, not answered 503
    assert response.status_code == 200
    assert response.json()["status"] == "accepted"
    assert connection.connection.info.backend_pid != pid
    assert Postback.objects.count() == 2
