"""One affiliate's FTD accruals take turns (the month's count sets the tier), on PostgreSQL.

The turn is an advisory lock, taken in affiliate order: it must not hold up anything else that
refers to the affiliate, and two transactions that each want the other's turn must not deadlock.
"""

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from attribution.models import Click, Conversion, Postback
from attribution.processing import batch
from payouts import ledger
from payouts.models import LedgerEntry
from tests.attribution.test_crediting import T0, click, postback
from tests.factories import ConversionFactory
from tests.payouts.helpers import plan

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Holder(threading.Thread):
    """Another worker: in its own transaction, takes FTD turns one after another, then commits."""

    def __init__(self, *steps: tuple[float, int]) -> None:
        super().__init__(daemon=True)
        self.steps = steps  # (seconds to wait first, affiliate id)
        self.holding = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                for pause, affiliate_id in self.steps:
                    time.sleep(pause)
                    ledger.AccrualMemo().lock({affiliate_id})
                    self.holding.set()
                time.sleep(0.2)
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.holding.set()
            connection.close()


def test_a_held_turn_does_not_hold_up_rows_that_refer_to_the_affiliate(alice, campaign):
    # given another transaction holding alice's FTD turn
    holder = Holder((0, alice.pk), (1.5, alice.pk))
    holder.start()
    assert holder.holding.wait(5)

    # when a conversion of hers is written meanwhile (its foreign key checks her row)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL lock_timeout = '1s'")
        conversion = ConversionFactory(affiliate=alice, campaign=campaign, type="install")

    # then it did not wait for that transaction (a lock on her row would have: lock timeout)
    holder.join(10)
    assert holder.error is None
    assert Conversion.objects.filter(pk=conversion.pk).exists()


def test_a_turn_below_one_held_is_not_waited_for(alice, bob):
    low, high = sorted([alice.pk, bob.pk])
    holder = Holder((0, low))
    holder.start()
    assert holder.holding.wait(5)

    with transaction.atomic():
        ledger.AccrualMemo().lock({high})
        with pytest.raises(ledger.OutOfTurn) as raised:
            ledger.AccrualMemo().lock({low})

    assert raised.value.affiliate_ids == [low]
    holder.join(10)
    assert holder.error is None


def test_two_workers_wanting_each_others_turns_both_finish(client, alice, bob, campaign, s2s):
    # given an FTD plan; alice's and bob's clicks; a player whose FTD is already credited
    plan(campaign, cpa={"ftd": "100.00"})
    low, high = sorted([alice, bob], key=lambda a: a.pk)
    clicks = {}
    for affiliate in (low, high):
        clicks[affiliate.pk] = click(client, affiliate, campaign, at=T0)
        Click.objects.filter(pk=clicks[affiliate.pk].pk).update(platform="web")
    at = int((T0 + timedelta(hours=1)).timestamp())
    postback(client, s2s, click_id=clicks[high.pk].click_id, event="ftd", txid="d0",
             player_id="p0", amount="50.00", currency="EUR", time=at)  # fmt: skip
    # and, waiting in the inbox, in this order: an FTD of the higher affiliate's, a second FTD
    # of that player (a claim already held: the batch's one-at-a-time step, so it accrues in two
    # steps), and an FTD of the lower affiliate's
    for click_id, txid, player in (
        (clicks[high.pk].click_id, "d1", "p1"),
        ("", "d2", "p0"),
        (clicks[low.pk].click_id, "d3", "p3"),
    ):
        query = {"event": "ftd", "txid": txid, "player_id": player, "amount": "50.00",
                 "currency": "EUR", "time": at, "click_id": click_id}  # fmt: skip
        response = client.get(f"/postbacks/s2s/{s2s.token}/", query)
        assert response.status_code == 200
    ids = list(
        Postback.objects.filter(status=Postback.Status.RECEIVED).values_list("pk", flat=True)
    )

    # when another worker holds the lower affiliate's turn and, a moment later, wants the
    # higher one's, while the batch holds the higher one's and comes to the lower one's
    holder = Holder((0, low.pk), (0.3, high.pk))
    holder.start()
    assert holder.holding.wait(5)
    counts = batch.postbacks_attribute(ids)
    holder.join(10)

    # then neither failed: the batch gave way (no deadlock), and everything was accrued once
    assert holder.error is None
    assert counts == {"processed": 3}
    paid = LedgerEntry.objects.filter(kind="cpa").values_list("conversion__event__txid", "amount")
    assert sorted((txid, str(amount)) for txid, amount in paid) == [
        ("d0", "100.00"),
        ("d1", "100.00"),
        ("d3", "100.00"),
    ]
    duplicate = Conversion.objects.get(event__txid="d2")
    assert (duplicate.status, duplicate.reason) == ("rejected", "duplicate_ftd")
