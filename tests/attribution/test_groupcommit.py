"""Group commit on PostgreSQL: request threads share one INSERT, each hears about its own row."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import DatabaseError, IntegrityError, connection
from django.utils import timezone

from attribution.ingestion import door, groupcommit
from attribution.models import Postback, PostbackSource
from tests.factories import PostbackSourceFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def inbox_row(source: PostbackSource | None, dedup_key: str, kind: str = "s2s") -> dict:
    return door._row(
        source_id=source.pk if source else None,
        kind=kind,
        method="GET",
        query=f"txid={dedup_key}",
        body="",
        meta={"HTTP_USER_AGENT": "test-sender/1.0"},
        remote_addr="203.0.113.7",
        received_at=timezone.now(),
        dedup_key=dedup_key,
        status=Postback.Status.RECEIVED,
    )


@pytest.fixture
def make_committer():
    made: list[groupcommit.GroupCommitter] = []

    def make(*, wait: float = 5.0) -> groupcommit.GroupCommitter:
        made.append(groupcommit.GroupCommitter(wait=wait))
        return made[-1]

    yield make
    for committer in made:  # before the database is flushed: closes its connection
        committer.stop()


def one_batch(committer: groupcommit.GroupCommitter, rows: list[dict]) -> list:
    """Submit ``rows`` from one thread each, all under way before any submits: one batch.

    Each answer is (id, created), or the exception that thread got.
    """
    under_way = threading.Barrier(len(rows))

    def request(row: dict):
        with committer.coming():
            under_way.wait()
            try:
                return committer.submit(row)
            except DatabaseError as exc:
                return exc

    batches_before = committer.batches
    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        answers = list(pool.map(request, rows))
    assert committer.batches == batches_before + 1
    return answers


def test_twenty_request_threads_share_one_insert_and_each_gets_its_own_row(make_committer):
    # given twenty requests under way with new postbacks, in no particular key order
    source = PostbackSourceFactory(kind="s2s")
    rows = [inbox_row(source, f"s2s:tx-{n * 7 % 20}") for n in range(20)]

    # when they hand their rows to the committer
    answers = one_batch(make_committer(), rows)

    # then one statement stored all twenty, and each request has its own row's id
    assert all(created for _, created in answers)
    stored = dict(Postback.objects.values_list("pk", "dedup_key"))
    assert {pk: stored[pk] for pk, _ in answers} == {
        pk: row["dedup_key"] for (pk, _), row in zip(answers, rows, strict=True)
    }
    assert len(stored) == 20


def test_many_threads_over_many_batches_store_every_row_once(make_committer):
    source = PostbackSourceFactory(kind="s2s")
    committer = make_committer(wait=0.002)
    rows = [inbox_row(source, f"s2s:tx-{n}") for n in range(300)]

    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(committer.submit, rows))

    assert all(created for _, created in answers)
    assert len({pk for pk, _ in answers}) == Postback.objects.count() == 300
    assert set(Postback.objects.values_list("dedup_key", flat=True)) == {
        r["dedup_key"] for r in rows
    }


def test_repeats_in_a_batch_and_of_stored_rows_answer_duplicate_with_the_stored_id(
    make_committer,
):
    # given a postback stored earlier
    source = PostbackSourceFactory(kind="s2s")
    committer = make_committer()
    [(old_id, created)] = one_batch(committer, [inbox_row(source, "s2s:old")])
    assert created

    # when one batch holds a new postback three times, the old one twice, an Apple postback
    # (no source) twice and another new one
    rows = [
        inbox_row(source, "s2s:new"),
        inbox_row(source, "s2s:old"),
        inbox_row(None, "skan:42:0", kind="skadnetwork"),
        inbox_row(source, "s2s:new"),
        inbox_row(source, "s2s:other"),
        inbox_row(None, "skan:42:0", kind="skadnetwork"),
        inbox_row(source, "s2s:old"),
        inbox_row(source, "s2s:new"),
    ]
    answers = one_batch(committer, rows)

    # then each key is stored once: one of its repeats is told "created", the others get the id
    stored = dict(Postback.objects.values_list("dedup_key", "pk"))
    assert len(stored) == 4
    assert [pk for pk, _ in answers] == [stored[row["dedup_key"]] for row in rows]
    assert stored["s2s:old"] == old_id
    created = Counter(row["dedup_key"] for row, (_, new) in zip(rows, answers, strict=True) if new)
    assert created == {"s2s:new": 1, "skan:42:0": 1, "s2s:other": 1}


def test_a_bad_row_fails_alone_and_the_rest_of_its_batch_is_stored(make_committer):
    # given a source deleted while one of its postbacks was on its way in
    source = PostbackSourceFactory(kind="s2s")
    gone = PostbackSourceFactory(kind="s2s")
    gone_row = inbox_row(gone, "s2s:orphan")
    gone.delete()
    rows = [inbox_row(source, f"s2s:tx-{n}") for n in range(4)]
    rows.insert(2, gone_row)

    # when its row shares a batch with four good ones
    answers = one_batch(make_committer(), rows)

    # then only its own request fails (the foreign key), and the others are stored
    assert isinstance(answers[2], IntegrityError)
    good = answers[:2] + answers[3:]
    assert all(created for _, created in good)
    assert set(Postback.objects.values_list("pk", flat=True)) == {pk for pk, _ in good}


def test_when_the_database_is_down_every_waiting_request_gets_the_error(make_committer):
    # given a committer whose database stops answering
    source = PostbackSourceFactory(kind="s2s")
    committer = make_committer()
    rows = [inbox_row(source, f"s2s:tx-{n}") for n in range(6)]
    saved_port = connection.settings_dict["PORT"]
    connection.settings_dict["PORT"] = "1"  # nothing listens there; shared by every connection
    try:
        # when six requests hand it their rows
        answers = one_batch(committer, rows)
    finally:
        connection.settings_dict["PORT"] = saved_port

    # then every one of them hears the database error (the view answers 503), none is stored
    assert all(isinstance(answer, DatabaseError) for answer in answers)
    assert Postback.objects.count() == 0

    # and once the database is back, the next batch connects again
    assert one_batch(committer, rows[:2]) == [
        (pk, True) for pk in Postback.objects.order_by("dedup_key").values_list("pk", flat=True)
    ]
