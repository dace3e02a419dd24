"""The operator's reports of a transaction apply as reported: a status may return to an earlier
one, and the dedup key tells a retry (same status, same report time) from a new report."""

from datetime import timedelta
from decimal import Decimal
from urllib.parse import urlencode

import pytest

from affiliates.models import AuditEvent
from attribution.models import Click, Conversion, PostbackEvent
from attribution.parsing.adapters import get_adapter
from attribution.processing import single
from payouts.models import LedgerEntry
from tests.attribution.test_crediting import T0, click
from tests.payouts.helpers import plan

pytestmark = pytest.mark.django_db

LIVE = ("pending", "approved", "paid")


def send(client, source, **params) -> dict:
    response = client.get(f"/postbacks/{source.kind}/{source.token}/?{urlencode(params)}")
    assert response.status_code == 200, response.content
    single.postback_process(postback_id=response.json()["id"])
    return response.json()


def at(minutes: int) -> int:
    return int((T0 + timedelta(hours=1, minutes=minutes)).timestamp())


@pytest.fixture
def deposit(client, alice, campaign, s2s):
    """Alice's player's first deposit, reported approved, with an FTD plan paying 100."""
    plan(campaign, cpa={"ftd": "100.00"})
    made = click(client, alice, campaign, at=T0)
    Click.objects.filter(pk=made.pk).update(platform="web")
    first = {"event": "ftd", "txid": "d1", "player_id": "p1", "amount": "50.00",
             "currency": "EUR", "click_id": made.click_id}  # fmt: skip
    send(client, s2s, **first, status="approved", time=at(0))
    return Conversion.objects.get(event__txid="d1")


def live_cpa(conversion: Conversion) -> list:
    return list(
        LedgerEntry.objects.filter(conversion=conversion, kind="cpa", status__in=LIVE).values_list(
            "amount", flat=True
        )
    )


def test_a_status_that_returns_to_an_earlier_one_applies(client, s2s, deposit):
    # when the operator declines the approved deposit, then approves it again
    declined = send(client, s2s, event="ftd", txid="d1", status="declined", time=at(10))
    deposit.refresh_from_db()
    after_decline = (deposit.status, live_cpa(deposit))
    approved_again = send(client, s2s, event="ftd", txid="d1", status="approved", time=at(20))
    deposit.refresh_from_db()

    # then each report was new, and the conversion and its commission followed each
    assert (declined["status"], approved_again["status"]) == ("accepted", "accepted")
    assert after_decline == ("rejected", [])
    assert (deposit.status, deposit.reason) == ("approved", "ok")
    assert live_cpa(deposit) == [Decimal("100.00")]
    assert Conversion.objects.filter(event__txid="d1").count() == 1
    changes = list(
        AuditEvent.objects.filter(
            content_type__model="conversion", object_id=str(deposit.pk), field="status"
        )
        .order_by("pk")
        .values_list("new", flat=True)
    )
    assert changes == ["rejected/declined", "approved/ok"]


def test_a_retry_of_a_report_is_still_a_repeat(client, s2s, deposit):
    send(client, s2s, event="ftd", txid="d1", status="declined", time=at(10))

    again = send(client, s2s, event="ftd", txid="d1", status="declined", time=at(10))

    assert again["status"] == "duplicate"
    assert PostbackEvent.objects.filter(txid="d1").count() == 2


def test_a_report_older_than_one_applied_changes_nothing(client, s2s, deposit):
    # given the operator's latest word: declined, at minute 20
    send(client, s2s, event="ftd", txid="d1", status="declined", time=at(20))

    # when an older report (approved at minute 10) arrives late
    late = send(client, s2s, event="ftd", txid="d1", status="approved", time=at(10))

    # then it is kept, and the latest word stands
    deposit.refresh_from_db()
    assert late["status"] == "accepted"
    assert (deposit.status, deposit.reason) == ("rejected", "declined")
    assert PostbackEvent.objects.filter(txid="d1", status="approved").count() == 2


def test_the_report_time_is_part_of_a_status_reports_key():
    s2s = get_adapter("s2s")
    first = s2s.parse({"event": "ftd", "txid": "T", "status": "approved", "time": "1764547200"})
    later = s2s.parse({"event": "ftd", "txid": "T", "status": "approved", "time": "1764550800"})
    untimed = s2s.parse({"event": "ftd", "txid": "T", "status": "approved"})

    assert first.dedup_key == "s2s:T:approved:2025-12-01T00:00:00Z"
    assert first.dedup_key != later.dedup_key
    assert untimed.dedup_key == "s2s:T:approved"
