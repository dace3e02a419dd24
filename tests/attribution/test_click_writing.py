"""Clicks written together on PostgreSQL, and the link kept per process for a few seconds."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import DatabaseError
from django.utils import timezone
from ulid import ULID

from affiliates.models import Campaign
from attribution.clicks import targets, writing
from attribution.models import Click
from portal.lib.groupcommit import GroupCommitter, LeaderCommitter
from tests.factories import TrackingLinkFactory

ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)


def click_row(link, *, click_id: str | None = None, sub1: str = "") -> tuple:
    return (
        click_id or str(ULID()),
        link.pk,
        link.affiliate_id,
        link.campaign_id,
        timezone.now(),
        "203.0.113.9",
        ANDROID,
        "android",
        "DE",
        sub1,
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    )


@pytest.fixture
def make_committer():
    made: list[GroupCommitter] = []

    def make(*, wait: float = 5.0, kind: type[GroupCommitter] = GroupCommitter) -> GroupCommitter:
        made.append(kind(write=writing.copy_rows, wait=wait, name="click"))
        return made[-1]

    yield make
    for committer in made:  # before the database is flushed: closes its connection
        committer.stop()


# Both ways of group commit: a committer thread (buffered clicks, postbacks) and the first
# request of a group writing it (sync clicks, the default).
KINDS = pytest.mark.parametrize("kind", [GroupCommitter, LeaderCommitter])


@KINDS
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_clicks_share_one_copy_and_one_commit(make_committer, alice, kind):
    # given sixteen clicks under way in one process
    link = TrackingLinkFactory(affiliate=alice)
    committer = make_committer(kind=kind)
    rows = [click_row(link, sub1=f"s{n}") for n in range(16)]
    under_way = threading.Barrier(len(rows))

    def request(row: tuple) -> None:
        with committer.coming():
            under_way.wait()
            committer.submit(row)

    # when each hands its row to the committer
    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        list(pool.map(request, rows))

    # then one batch stored them all, each as it was given
    assert committer.batches == 1
    stored = {c.click_id: c for c in Click.objects.all()}
    assert set(stored) == {row[0] for row in rows}
    for row in rows:
        click = stored[row[0]]
        assert (click.link_id, click.sub1, click.ip, click.country) == (
            link.pk,
            row[9],
            "203.0.113.9",
            "DE",
        )
        assert click.created_at == row[4]


@KINDS
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_many_threads_over_many_groups_store_every_click_once(make_committer, alice, kind):
    # given 16 request threads, each clicking 25 times with no pause between
    link = TrackingLinkFactory(affiliate=alice)
    committer = make_committer(wait=0.05, kind=kind)

    def visitor(n: int) -> list[str]:
        stored = []
        for i in range(25):
            row = click_row(link, sub1=f"v{n}-{i}")
            with committer.coming():
                committer.submit(row)
            stored.append(row[0])
        return stored

    with ThreadPoolExecutor(max_workers=16) as pool:
        answered = [cid for ids in pool.map(visitor, range(16)) for cid in ids]

    # then each answered click is stored exactly once, in groups (fewer commits than clicks)
    stored = list(Click.objects.values_list("click_id", flat=True))
    assert sorted(stored) == sorted(answered) and len(set(stored)) == 400
    assert committer.batches < 400


@KINDS
@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_refused_batch_fails_only_the_bad_click(make_committer, alice, kind):
    # given a click id stored already (the table's unique key), and a batch that repeats it
    link = TrackingLinkFactory(affiliate=alice)
    committer = make_committer(wait=0.5, kind=kind)
    taken = click_row(link)
    committer.submit(taken)
    fresh = [click_row(link) for _ in range(5)]
    rows = [*fresh[:2], taken, *fresh[2:]]

    def request(row: tuple):
        try:
            committer.submit(row)
        except DatabaseError as exc:
            return exc
        return None

    with ThreadPoolExecutor(max_workers=len(rows)) as pool:
        answers = list(pool.map(request, rows))

    # then only the repeat's request failed, and every other click is stored
    assert [isinstance(a, DatabaseError) for a in answers] == [
        False,
        False,
        True,
        False,
        False,
        False,
    ]
    assert Click.objects.count() == 6


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_buffered_clicks_are_answered_first_and_written_by_the_committer(make_committer, alice):
    link = TrackingLinkFactory(affiliate=alice)
    committer = make_committer(wait=0.05)
    rows = [click_row(link) for _ in range(30)]

    for row in rows:
        committer.submit_nowait(row)  # returns before the row is stored
    committer.stop()  # a graceful stop (gunicorn worker exit) writes what is queued

    assert set(Click.objects.values_list("click_id", flat=True)) == {r[0] for r in rows}


@pytest.mark.django_db
def test_a_change_saved_in_this_process_reaches_the_redirect_at_once(client, alice):
    link = TrackingLinkFactory(affiliate=alice)
    assert client.get(f"/c/{link.code}").status_code == 302  # the link is kept now

    campaign = Campaign.objects.get(pk=link.campaign_id)
    campaign.status = Campaign.Status.PAUSED
    campaign.save(update_fields=["status"])

    assert client.get(f"/c/{link.code}").status_code == 404
    assert Click.objects.count() == 1


@pytest.mark.django_db
def test_a_campaign_paused_elsewhere_stops_sending_traffic_within_the_window(
    client, alice, settings
):
    # given a link this process has looked up, and a short window
    settings.CLICK_LINK_CACHE_SECONDS = 0.5
    link = TrackingLinkFactory(affiliate=alice)
    assert client.get(f"/c/{link.code}").status_code == 302
    paused_at = time.monotonic()

    # when another process pauses the campaign (no signal reaches this one)
    Campaign.objects.filter(pk=link.campaign_id).update(status=Campaign.Status.PAUSED)

    # then this process redirects until the window closes and never after it
    statuses = []
    while time.monotonic() - paused_at < 1.0:
        statuses.append((time.monotonic() - paused_at, client.get(f"/c/{link.code}").status_code))
        time.sleep(0.05)
    assert all(status == 404 for at, status in statuses if at > 0.5)
    assert statuses[-1][1] == 404
    assert Click.objects.count() == 1 + sum(1 for _, status in statuses if status == 302)


@pytest.mark.django_db
def test_unknown_codes_do_not_grow_the_kept_links_without_bound(client, monkeypatch):
    monkeypatch.setattr(targets, "_MAX_KEPT", 10)
    for n in range(25):
        assert client.get(f"/c/scan-{n}").status_code == 404
    assert len(targets._links) <= 10


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_every_click_request_stops_being_waited_for_as_it_ends(client, alice, settings):
    # given group commit on, as in production
    settings.CLICK_GROUP_COMMIT = True
    link = TrackingLinkFactory(affiliate=alice)
    committer = writing.committer()
    batches = committer.batches
    try:
        # when a click, a bot's request, a HEAD and an unknown code come through the stack
        click = client.get(f"/c/{link.code}", HTTP_USER_AGENT=ANDROID)
        bot = client.get(f"/c/{link.code}", HTTP_USER_AGENT="Googlebot/2.1")
        head = client.head(f"/c/{link.code}", HTTP_USER_AGENT=ANDROID)
        missing = client.get("/c/no-such-code", HTTP_USER_AGENT=ANDROID)

        # then each was answered, only the click stored (by the committer), and the committer
        # waits for no request (a leak would hold every later group for its whole wait)
        assert [r.status_code for r in (click, bot, head, missing)] == [302, 302, 302, 404]
        assert committer._coming == 0
        assert committer.batches == batches + 1
        assert list(Click.objects.values_list("click_id", flat=True)) == [
            parse_qs(urlsplit(click["Location"]).query)["cid"][0]
        ]
    finally:
        writing.stop()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_group_whose_writing_breaks_answers_every_click_and_the_next_group_is_written(alice):
    # given a leader whose write fails once in a way no database error describes
    link = TrackingLinkFactory(affiliate=alice)
    broken = threading.Event()
    broken.set()

    def write(db, rows):
        if broken.is_set():
            broken.clear()
            raise RuntimeError("the writer broke")
        return writing.copy_rows(db, rows)

    committer = LeaderCommitter(write=write, wait=0.5, name="click")
    rows = [click_row(link) for _ in range(8)]
    under_way = threading.Barrier(len(rows))

    def request(row: tuple):
        with committer.coming():
            under_way.wait()
            try:
                return committer.submit(row)
            except Exception as exc:
                return exc

    try:
        with ThreadPoolExecutor(max_workers=len(rows)) as pool:
            answers = list(pool.map(request, rows))
        # then every request of the broken group heard of it (none waits, none is told "stored")
        failed = [a for a in answers if isinstance(a, RuntimeError)]
        assert failed and all(a is True or isinstance(a, RuntimeError) for a in answers)
        stored = set(Click.objects.values_list("click_id", flat=True))
        assert stored == {r[0] for r, a in zip(rows, answers, strict=True) if a is True}

        # and the lead was not lost: the next click is written
        again = click_row(link)
        assert committer.submit(again) is True
        assert Click.objects.filter(click_id=again[0]).exists()
    finally:
        committer.stop()
