"""``manage.py seed_demo``: the demo program, with the portal's own address in what it prints."""

import json
from datetime import timedelta
from io import StringIO
from urllib.parse import quote

import pytest
from django.core.management import call_command
from django.db.models import Count, Sum
from django.utils import timezone

from affiliates.demo import seed_demo
from affiliates.management.commands.seed_demo import TRY_USER_AGENT
from affiliates.models import Campaign
from attribution import tasks
from attribution.ingestion import handoff
from attribution.models import (
    Click,
    Conversion,
    DailyRollup,
    HourlyRollup,
    Postback,
    PostbackEvent,
    SubRollup,
)
from attribution.rollups import keep
from payouts.models import FxRate, LedgerEntry

pytestmark = pytest.mark.django_db


def test_the_demo_names_the_address_the_portal_answers_on():
    # when the demo is seeded for a portal on another host and port
    base = "http://portal.test:8123"
    out = StringIO()
    call_command("seed_demo", "--clicks", "0", "--json", "--base-url", base, stdout=out)
    demo = json.loads(out.getvalue())
    again = StringIO()
    call_command("seed_demo", "--clicks", "0", "--base-url", f"{base}/", stdout=again)

    # then the postback URLs it lists (Apple's too), the Adjust callback it stores and the link
    # it suggests trying are on that address
    assert demo["postback_sources"]
    assert all(s["url"].startswith(f"{base}/") for s in demo["postback_sources"])
    callback = quote(f"{base}/postbacks/adjust/", safe="")
    assert Campaign.objects.filter(android_url__contains=callback).exists()
    assert f"' {base}/c/" in again.getvalue()


def test_the_link_it_suggests_trying_records_a_click(client):
    # given the demo and the command it prints
    out = StringIO()
    call_command("seed_demo", "--clicks", "0", "--base-url", "http://testserver", stdout=out)
    [line] = [line for line in out.getvalue().splitlines() if "try a link:" in line]
    path = "/c/" + line.rsplit("/c/", 1)[1]
    assert "curl -s -o /dev/null" in line and " -I" not in line  # a GET, not a HEAD

    # when that request is made with the user agent the command gives
    response = client.get(path, HTTP_USER_AGENT=TRY_USER_AGENT)

    # then it is a click
    assert response.status_code == 302
    assert Click.objects.filter(link__code=path.removeprefix("/c/")).count() == 1


IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
)
ANDROID = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Mobile Safari/537.36"
)
DESKTOP = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"


def figures() -> dict[str, object]:
    """Every rollup row and every ledger total, plus how many rows each demo table holds."""
    rollups = {
        model.__name__: sorted(
            tuple(str(v) for v in row)
            for row in model.objects.values_list(
                *(f.attname for f in model._meta.concrete_fields if f.attname != "id")
            )
        )
        for model in (DailyRollup, HourlyRollup, SubRollup)
    }
    ledger = sorted(
        (e["beneficiary_id"], e["kind"], e["status"], e["currency"], str(e["total"]), e["n"])
        for e in LedgerEntry.objects.values("beneficiary_id", "kind", "status", "currency")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by()
    )
    counts = {
        model.__name__: model.objects.count()
        for model in (Click, Postback, PostbackEvent, Conversion, LedgerEntry, FxRate)
    }
    return {"rollups": rollups, "ledger": ledger, "counts": counts}


def test_a_second_seed_after_traffic_adds_nothing_and_changes_no_figure(client, monkeypatch):
    # given the demo, and visitors who clicked every demo link from each platform
    demo = seed_demo(clicks=1500, days=10)
    assert demo.conversions > 0 and LedgerEntry.objects.exists()
    for link in demo.links:
        for user_agent in (IPHONE, ANDROID, DESKTOP):
            response = client.get(f"/c/{link['code']}", HTTP_USER_AGENT=user_agent)
            assert response.status_code == 302
    # ... counted by the beat's click fill
    tasks.fill_click_rollups()
    while keep.clicks_fill(settle=timedelta(0)):
        pass
    before = figures()

    # when the demo is seeded again
    again = seed_demo(clicks=1500, days=10)

    # then it finds what it made, adds nothing and changes no figure
    assert again.conversions == 0
    after = figures()
    assert after["counts"] == before["counts"]
    assert after["ledger"] == before["ledger"]
    assert after["rollups"] == before["rollups"]

    # when it is seeded again six hours later, when what the first run left in the future is past
    real_now = timezone.now
    monkeypatch.setattr(timezone, "now", lambda: real_now() + timedelta(hours=6))
    later = seed_demo(clicks=1500, days=10)

    # then that run adds nothing either
    assert later.conversions == 0
    assert figures() == before


def queued() -> int:
    """Messages waiting in the broker's default queue (Redis in CI, kombu's folder otherwise)."""
    from portal.celery import app

    with app.connection_for_write() as connection:
        declared = connection.default_channel.queue_declare(queue=app.conf.task_default_queue)
        return declared.message_count


def test_seeding_leaves_no_task_for_the_worker(django_capture_on_commit_callbacks):
    # given the broker's queue as it is
    before = queued()

    # when the demo is seeded, and what it left to run after its commits has run
    with django_capture_on_commit_callbacks(execute=True):
        demo = seed_demo(clicks=1500, days=10)
    handoff.flush()

    # then it attributed every postback itself and published nothing: a task per postback would
    # only flood the log of the worker `make run` starts next with no-ops
    assert demo.conversions > 0
    assert not Postback.objects.filter(status=Postback.Status.RECEIVED).exists()
    assert queued() == before
