"""Nothing a sender sends can stop the pipeline.

The door refuses values the columns cannot hold (400, with the reason) and stores exactly the
text it read; a row the worker still cannot process (accepted before a rule changed, or tripping a
bug) is marked failed with the error, shown in ingestion health with a re-run button, and the rows
behind it are attributed as if it were not there.
"""

import hashlib
import hmac
from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from affiliates.models import AuditEvent
from attribution.ingestion import handoff
from attribution.models import Conversion, ConversionType, Postback, PostbackEvent, PostbackSource
from attribution.parsing import reading
from attribution.processing import single, work
from tests.attribution.test_crediting import T0, click
from tests.factories import PostbackSourceFactory
from tests.processes import celery_worker, purge_queue, wait_until

pytestmark = pytest.mark.django_db


def url(source: PostbackSource) -> str:
    return f"/postbacks/{source.kind}/{source.token}/"


def s2s_query(txid: str, amount: str, event: str = "deposit", **extra: str) -> str:
    return urlencode({"event": event, "txid": txid, "amount": amount, "currency": "EUR", **extra})


def stored_row(source: PostbackSource, query: str, *, received_at=None) -> Postback:
    """An inbox row as an older door (or an adapter since changed) accepted it."""
    return Postback.objects.create(
        source=source,
        kind=source.kind,
        method="GET",
        query=query,
        received_at=received_at or timezone.now(),
        dedup_key=f"s2s:{hashlib.sha256(query.encode()).hexdigest()[:16]}",
    )


# --- the door: the columns' ranges, the same bytes, the same parse ----------------------------


@pytest.mark.parametrize(
    ("amount", "event", "why"),
    [
        ("1000000000000", "deposit", "too large"),  # a millisecond timestamp sent as the amount
        ("1698811507000", "ftd", "too large"),
        ("-1e12", "custom_refund", "too large"),
        ("0.0000001", "deposit", "more than 6 decimal places"),
        ("4.9900001", "purchase", "more than 6 decimal places"),
        ("-10", "deposit", "negative"),
        ("-25.50", "chargeback", "negative"),
        ("-5", "withdrawal", "negative"),
    ],
)
def test_the_door_refuses_an_amount_its_column_or_its_type_cannot_hold(
    client, s2s, amount, event, why
):
    response = client.get(url(s2s) + "?" + s2s_query("tx-1", amount, event))

    assert response.status_code == 400
    assert why in response.json()["error"]
    assert not Postback.objects.filter(status=Postback.Status.RECEIVED).exists()
    assert not PostbackEvent.objects.exists()


@pytest.mark.postgres  # SQLite keeps 15 significant digits of a decimal, not 18
def test_the_door_takes_the_largest_and_smallest_amounts_the_column_holds(client, s2s):
    for txid, amount in (("big", "999999999999.999999"), ("small", "0.000001")):
        response = client.get(url(s2s) + "?" + s2s_query(txid, amount))
        assert response.status_code == 200, response.content
        single.postback_process(postback_id=response.json()["id"])
    revenue = dict(PostbackEvent.objects.values_list("txid", "revenue"))
    assert revenue == {"big": Decimal("999999999999.999999"), "small": Decimal("0.000001")}


def test_a_custom_event_may_carry_a_negative_amount(client, s2s):
    response = client.get(url(s2s) + "?" + s2s_query("tx-refund", "-4.99", "refund"))

    assert response.status_code == 200
    single.postback_process(postback_id=response.json()["id"])
    event = PostbackEvent.objects.get()
    assert (event.conversion_type, event.revenue) == ("custom", Decimal("-4.99"))


def test_the_sign_follows_the_sources_own_event_mapping(client, app):
    source = PostbackSourceFactory(kind="s2s", brand=app.brand, event_mapping={"cb": "chargeback"})

    response = client.get(url(source) + "?" + s2s_query("tx-cb", "-3", "cb"))

    assert response.status_code == 400
    assert "a chargeback is reported as a positive amount" in response.json()["error"]


def test_the_door_and_the_worker_read_the_same_bytes(client, s2s):
    # given a key that only reads as "amount" once its DEL character is gone: the door used
    # to read the raw body (amount 10, answered 200) and the worker the stored, stripped copy
    # (amount 10^12, an overflow that stopped every batch)
    body = '{"event": "deposit", "txid": "tx-del", "amount": "10", "am\x7fount": "1e12"}'

    # when it is posted, signed over the raw bytes
    s2s.hmac_secret = "s3cret"
    s2s.save()
    signature = hmac.new(b"s3cret", body.encode(), hashlib.sha256).hexdigest()
    response = client.post(
        url(s2s), body, content_type="application/json", HTTP_X_SIGNATURE=f"sha256={signature}"
    )

    # then the door reads what the worker would: the stripped text, amount 10^12, refused
    assert response.status_code == 400
    assert "too large" in response.json()["error"]
    assert not Postback.objects.filter(status=Postback.Status.RECEIVED).exists()


def test_what_the_door_accepts_the_worker_reads_alike(client, s2s):
    body = '{"event": "deposit", "txid": "tx-del2", "amount": "10", "am\x7fount": "999"}'

    response = client.post(url(s2s), body, content_type="application/json")

    assert response.status_code == 200
    row = Postback.objects.get(pk=response.json()["id"])
    assert "\x7f" not in row.body
    assert single.postback_process(postback_id=row.pk) == "processed"
    assert PostbackEvent.objects.get(postback=row).revenue == Decimal("999")


def test_the_parsing_rules_know_every_conversion_type():
    assert tuple(ConversionType.values) == reading.CONVERSION_TYPES
    for model in (PostbackEvent, Conversion):
        field = model._meta.get_field("revenue")
        assert (field.max_digits, field.decimal_places) == (
            reading.AMOUNT_DIGITS,
            reading.AMOUNT_PLACES,
        )


# --- the worker: a poison row is failed, the rows around it are attributed --------------------


POISON_SQL = {
    # The database refuses the poison row's event as it refused an amount of 10^12 in
    # numeric(18, 6): the door no longer lets such a value through, so a trigger stands in for
    # whatever a row may still trip on (a value a column cannot hold, a bug a payload finds).
    "postgresql": [
        """
        CREATE FUNCTION test_poison() RETURNS trigger AS $$
        BEGIN
            IF NEW.txid = 'poison' THEN
                RAISE EXCEPTION 'numeric field overflow'
                    USING ERRCODE = 'numeric_value_out_of_range';
            END IF;
            RETURN NEW;
        END $$ LANGUAGE plpgsql
        """,
        """
        CREATE TRIGGER test_poison BEFORE INSERT ON attribution_postbackevent
            FOR EACH ROW EXECUTE FUNCTION test_poison()
        """,
    ],
    "sqlite": [
        """
        CREATE TRIGGER test_poison BEFORE INSERT ON attribution_postbackevent
            WHEN NEW.txid = 'poison'
            BEGIN SELECT RAISE(ABORT, 'numeric field overflow'); END
        """
    ],
}
UNPOISON_SQL = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS test_poison ON attribution_postbackevent",
        "DROP FUNCTION IF EXISTS test_poison()",
    ],
    "sqlite": ["DROP TRIGGER IF EXISTS test_poison"],
}


def unpoison() -> None:
    with connection.cursor() as cursor:
        for sql in UNPOISON_SQL[connection.vendor]:
            cursor.execute(sql)


@pytest.fixture
def poison_trigger(db):
    with connection.cursor() as cursor:
        for sql in POISON_SQL[connection.vendor]:
            cursor.execute(sql)
    yield
    unpoison()


def _poison_between_good_ones(client, alice, campaign, s2s) -> tuple[list[Postback], Postback]:
    made = click(client, alice, campaign, at=T0)
    received = timezone.now() - timedelta(seconds=5)
    good = []
    for n in range(3):
        query = s2s_query(f"good-{n}", "20", "deposit", click_id=made.click_id)
        good.append(stored_row(s2s, query, received_at=received + timedelta(milliseconds=n * 2)))
    poison = stored_row(
        s2s,
        s2s_query("poison", "16.98", click_id=made.click_id),
        received_at=received + timedelta(milliseconds=1),
    )
    return good, poison


def _check_quarantined(good: list[Postback], poison: Postback, alice) -> None:
    poison.refresh_from_db()
    assert poison.status == Postback.Status.FAILED
    assert "could not be processed" in poison.reason
    assert "numeric field overflow" in poison.reason
    for row in good:
        row.refresh_from_db()
        assert row.status == Postback.Status.PROCESSED
    credited = Conversion.objects.filter(event__postback__in=good)
    assert sorted(c.affiliate_id for c in credited) == [alice.pk] * 3
    assert not PostbackEvent.objects.filter(postback=poison).exists()
    # and nothing is left for the sweep to retry for ever
    assert work.postbacks_waiting(older_than=timedelta(0), limit=100) == []


@pytest.mark.postgres
def test_a_poison_row_in_a_batch_is_failed_and_the_rest_attributed(
    client, alice, campaign, s2s, poison_trigger
):
    # given a poison row between good ones in the inbox
    good, poison = _poison_between_good_ones(client, alice, campaign, s2s)

    # when a worker's batch takes them (the oldest waiting rows, as every task does)
    counts = work.postbacks_process(postback_ids=[good[0].pk], top_up=200)

    # then the good ones are attributed and the poison one is failed, with the error
    assert counts == {"processed": 3, "failed": 1}
    _check_quarantined(good, poison, alice)


def test_one_at_a_time_a_poison_row_is_failed_and_the_rest_attributed(
    client, alice, campaign, s2s, poison_trigger
):
    good, poison = _poison_between_good_ones(client, alice, campaign, s2s)

    counts = single.postbacks_one_by_one(sorted(r.pk for r in [*good, poison]))

    assert counts == {"processed": 3, "failed": 1}
    _check_quarantined(good, poison, alice)


@pytest.mark.postgres
def test_a_row_that_keeps_meeting_database_errors_is_given_up_on(client, s2s, settings):
    # given a row whose insert the database cancels every time (as a statement timeout would)
    settings.POSTBACK_MAX_ATTEMPTS = 3
    stuck = stored_row(s2s, s2s_query("stuck", "5"))
    fine = stored_row(s2s, s2s_query("fine", "5"))
    with connection.cursor() as cursor:
        cursor.execute(
            """
            CREATE FUNCTION test_cancel_stuck() RETURNS trigger AS $$
            BEGIN
                IF NEW.txid = 'stuck' THEN
                    RAISE EXCEPTION 'canceling statement due to statement timeout'
                        USING ERRCODE = 'query_canceled';
                END IF;
                RETURN NEW;
            END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_cancel_stuck BEFORE INSERT ON attribution_postbackevent
                FOR EACH ROW EXECUTE FUNCTION test_cancel_stuck();
            """
        )

    # when the worker takes both, again and again (the task's retries, the sweep)
    for _ in range(2):
        with pytest.raises(OperationalError):
            single.postbacks_one_by_one([stuck.pk, fine.pk])
        stuck.refresh_from_db()
        assert stuck.status == Postback.Status.RECEIVED
        assert "statement timeout" in stuck.reason
    counts = single.postbacks_one_by_one([stuck.pk, fine.pk])

    # then the other row went through at once, and the stuck one is failed after its attempts
    fine.refresh_from_db()
    stuck.refresh_from_db()
    assert fine.status == Postback.Status.PROCESSED
    assert counts == {"failed": 1, "skipped": 1}
    assert (stuck.status, stuck.attempts) == (Postback.Status.FAILED, 3)
    assert stuck.reason.startswith("failed: gave up after 3 attempts; the last: OperationalError")


def test_a_failed_row_is_shown_in_ingestion_health_and_can_be_re_run(
    client, manager_client, alice, campaign, s2s, manager, poison_trigger
):
    # given a row that failed because of a value the worker could not take
    good, poison = _poison_between_good_ones(client, alice, campaign, s2s)
    single.postbacks_one_by_one(sorted(r.pk for r in [*good, poison]))

    # then ingestion health lists it with its reason and a re-run button
    page = manager_client.get("/admin/attribution/postback/health/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f'name="id" value="{poison.pk}"' in html
    assert "could not be processed" in html

    # when the cause is fixed and a manager re-runs it
    unpoison()
    response = manager_client.post("/admin/attribution/postback/health/rerun/", {"id": poison.pk})
    assert response.status_code == 302
    poison.refresh_from_db()
    assert (poison.status, poison.attempts, poison.reason) == ("received", 0, "")
    audit = AuditEvent.objects.get(object_id=str(poison.pk), field="status")
    assert (audit.old, audit.new, audit.actor) == ("failed", "received", manager)
    assert "could not be processed" in audit.note

    # then the worker attributes it like any other
    assert single.postback_process(postback_id=poison.pk) == "processed"
    assert Conversion.objects.get(event__postback=poison).revenue == Decimal("16.98")


def test_re_run_touches_only_failed_rows(manager_client, s2s):
    row = stored_row(s2s, s2s_query("t", "1"))
    Postback.objects.filter(pk=row.pk).update(status=Postback.Status.PROCESSED)

    manager_client.post("/admin/attribution/postback/health/rerun/", {"id": [row.pk, "x"]})

    row.refresh_from_db()
    assert row.status == Postback.Status.PROCESSED


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_never_stops_on_a_poison_row(
    client, tmp_path, alice, campaign, s2s, poison_trigger
):
    # given a poison row between good ones, waiting in the inbox, and a worker over the broker
    purge_queue()
    good, poison = _poison_between_good_ones(client, alice, campaign, s2s)
    with celery_worker(tmp_path):
        # when the rows are handed over (as ingestion and the sweep do) and more arrive after
        handoff.publish_batch([poison.pk, *(r.pk for r in good)])
        later = client.get(url(s2s) + "?" + s2s_query("later", "7"))
        assert later.status_code == 200

        # then every good row is attributed, the later one too, and the poison one failed
        rows = [*good, Postback.objects.get(pk=later.json()["id"])]
        assert wait_until(
            lambda: all(
                Postback.objects.get(pk=r.pk).status == Postback.Status.PROCESSED for r in rows
            ),
            timeout=60,
        )
        assert wait_until(
            lambda: Postback.objects.get(pk=poison.pk).status == Postback.Status.FAILED
        )
    _check_quarantined(good, poison, alice)
