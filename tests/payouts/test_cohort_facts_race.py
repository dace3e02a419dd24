"""A player marked stale while a refresh is working them out stays stale (PostgreSQL).

The refresh reads the player's data, then deletes their mark. A change committed in between,
whose mark found the old one still there, would be lost if marking did nothing on that
conflict: it must wait for the refresh and mark again after it.
"""

import threading
import time

import pytest
from django.db import connection, transaction

from payouts import cohort_facts
from payouts.models import CohortStale

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


class Refreshing(threading.Thread):
    """A refresh of player (7, "P-1"): holds its mark, reads for a second, deletes the mark."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.holding = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                list(CohortStale.objects.select_for_update().filter(brand_id=7, player_id="P-1"))
                self.holding.set()
                time.sleep(1.0)
                CohortStale.objects.filter(brand_id=7, player_id="P-1").delete()
        except Exception as exc:  # reported by the test
            self.error = exc
        finally:
            self.holding.set()
            connection.close()


def test_a_mark_during_a_refresh_is_not_lost():
    cohort_facts.mark_stale([(7, "P-1")])
    refresh = Refreshing()
    refresh.start()
    assert refresh.holding.wait(5)

    # a conversion of P-1 changes meanwhile and marks the player
    started = time.monotonic()
    with transaction.atomic():
        cohort_facts.mark_stale([(7, "P-1")])
    waited = time.monotonic() - started

    refresh.join(10)
    assert refresh.error is None
    assert waited > 0.5  # it waited for the refresh's commit
    assert CohortStale.objects.filter(brand_id=7, player_id="P-1").exists()
