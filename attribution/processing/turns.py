"""Turns workers take on devices, players and transactions, so that two steps of one player's story
are never decided at once (transaction-scoped PostgreSQL advisory locks)."""

import hashlib
import logging

from django.db import connection

from attribution.crediting import decide
from attribution.models import (
    PostbackEvent,
)

logger = logging.getLogger(__name__)


def _lock_ids(event: PostbackEvent) -> list[str]:
    """The device and player ids an event can chain through, whatever brand they fall under,
    and the operator's transaction (its later reports may name nothing else)."""
    ids = [f"player:{event.player_id}"] if event.player_id else []
    if decide.is_later_report(event):
        ids.append(f"tx:{event.source_id}:{event.txid}")
    return ids + decide.device_keys(event)


def _lock_numbers(event: PostbackEvent) -> set[int]:
    return {
        int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        for key in _lock_ids(event)
    }


def devices_lock(events: list[PostbackEvent]) -> None:
    """Take turns with other workers on the devices and players these events name.

    Two workers that each hold a step of one player's story (a registration, and the first
    deposit that follows it) must not decide both at once: neither would see the other's
    uncommitted row, and the deposit would stay organic for good. With the lock the second
    waits for the first to commit, then reads it. Transaction-scoped PostgreSQL advisory locks,
    taken in one order, so that two workers cannot deadlock on them. (SQLite has one writer at
    a time anyway.)
    """
    if connection.vendor != "postgresql":
        return
    keys = sorted(set().union(*(_lock_numbers(event) for event in events)))
    if keys:
        with connection.cursor() as cursor:
            # unnest keeps the array's (sorted) order, and the locks are taken in scan order.
            cursor.execute(
                "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k", [keys]
            )


def devices_try_lock(
    events: list[PostbackEvent],
) -> tuple[list[PostbackEvent], list[PostbackEvent]]:
    """``devices_lock`` for a batch, without waiting: (events to decide now, events to leave).

    An event whose device or player another worker holds is left for a later batch, and so is
    every later event of the batch that shares an id with one left, so that a story's steps keep
    their order. The batch goes on with the rest instead of queueing behind the other worker.
    """
    if connection.vendor != "postgresql" or not events:
        return events, []
    numbers = [_lock_numbers(event) for event in events]
    keys = sorted(set().union(*numbers))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k FROM unnest(%s::bigint[]) AS k WHERE NOT pg_try_advisory_xact_lock(k)",
            [keys],
        )
        blocked = {row[0] for row in cursor.fetchall()}
    now, later = [], []
    for event, mine in zip(events, numbers, strict=True):
        if mine & blocked:
            blocked |= mine
            later.append(event)
        else:
            now.append(event)
    return now, later
