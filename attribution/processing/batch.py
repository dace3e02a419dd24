"""The worker's batch path: a batch of inbox rows attributed in one transaction, on PostgreSQL.

The decisions are the one-at-a-time path's: each event goes through the same
``decide.build_conversion`` and fraud rules, in inbox order. Only where the answers come from
changes. ``BatchLookups`` reads the clicks, earlier installs and registrations, held claims, fraud
policies and counts for the whole batch in a few queries, and adds what the batch itself has
decided so far (a registration earlier in the batch is the origin of a deposit later in it; an
install earlier in the batch counts towards a burst). The writes go out in bulk: events,
conversions, identities, rollups, ledger entries and audit rows, a statement or two each.

Whatever is not plain goes the one-at-a-time way, after the batch so far is written: Apple's
postbacks, a claim somebody already holds (a duplicate install, a second FTD), an install or
registration whose earlier events were left organic and must now be credited, and the operator's
later report of a transaction (a new status for its conversion). A claim that a
concurrent worker takes between our read and our write fails the insert; the whole batch then
rolls back and goes one at a time, which settles claims row by row.
"""

import logging

from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from django.db.models import F
from django.utils import timezone

from affiliates.models import App
from attribution.crediting import decide
from attribution.crediting.batch_lookups import BatchLookups
from attribution.crediting.decide import CHAINED
from attribution.models import (
    APPLE_KINDS,
    Conversion,
    Identity,
    Postback,
    PostbackEvent,
)
from attribution.outbound import schedule
from attribution.processing import normalise, single, turns
from attribution.rollups import keep
from payouts import ledger
from portal.lib import bulk, queue

logger = logging.getLogger(__name__)


# A deferred row waits this long before its own batch: the other worker's batch takes about
# that long to commit.
RETRY_DEFERRED_SECONDS = 0.2


# A batch that gives way to another transaction (a deadlock's victim, or an affiliate's FTD turn
# out of order: ledger.OutOfTurn, after waiting for that turn) runs again at once, this many
# times, before the task's own retry (with backoff) takes over. Locks are taken in one order
# wherever the batch knows them in advance; its one-at-a-time steps cannot always.
GIVE_WAY_RETRIES = 3


DEADLOCK = "40P01"


def _write(pending: list[tuple[Conversion, PostbackEvent]]) -> None:
    """Insert what the batch decided, with everything that follows a new conversion."""
    if not pending:
        return
    conversions = [c for c, _ in pending]
    bulk.copy_insert(conversions)
    bulk.copy_insert(
        [
            Identity(key=key, conversion=c, occurred_at=c.occurred_at)
            for c, event in pending
            if c.type in CHAINED
            for key in dict.fromkeys(k[:200] for k in decide.identity_keys(c, event))
        ]
    )
    keep.conversions_add(conversions)
    ledger.accrue_new(conversions)
    schedule.outbound_new(conversions)


def _events(rows: list[Postback]) -> tuple[list[PostbackEvent], list[int]]:
    """Parse each row into its (unsaved) event; unreadable rows are marked failed."""
    apps: dict[tuple[str, str], App | None] = {}

    def app_for(identifier: str, platform: str) -> App | None:
        if (identifier, platform) not in apps:
            apps[identifier, platform] = normalise.app_for_identifier(identifier, platform)
        return apps[identifier, platform]

    events, failed = [], []
    for row in rows:
        row.attempts += 1
        try:
            values = normalise.event_values(row, app_for)
        except normalise.UNREADABLE as exc:
            normalise.row_failed(row, exc)
            failed.append(row.pk)
            continue
        events.append(PostbackEvent(postback=row, source=row.source, **values))
    return events, failed


def _attribute(events: list[PostbackEvent]) -> None:
    """Decide each event in order; plain ones in bulk, the rest one at a time."""
    start = 0
    while start < len(events):
        rest = events[start:]
        lookups = BatchLookups(rest)
        # Conversion ids from the table's own sequence: the batch knows them before it writes.
        ids = iter(bulk.reserve_ids(Conversion, len(rest)))
        pending: list[tuple[Conversion, PostbackEvent]] = []
        for event in rest:
            start += 1
            if event.postback.kind not in APPLE_KINDS and not lookups.reported_before(event):
                conversion = decide.build_conversion(event, lookups=lookups)
                claim = conversion.claim_key
                plain = claim not in lookups.held and claim not in lookups.pending_claims
                if plain and conversion.type in CHAINED and conversion.affiliate_id:
                    plain = not lookups.has_orphans(conversion, event)
                if plain:
                    conversion.pk = next(ids)
                    lookups.add(conversion, event)
                    pending.append((conversion, event))
                    continue
            # Not plain: write the batch so far, then the one-at-a-time path with the database
            # as it now is; the rest of the batch is read afresh after it.
            _write(pending)
            single.conversion_for_event(event=event)
            break
        else:
            _write(pending)


def postbacks_attribute(postback_ids: list[int], *, top_up: int = 0) -> dict[str, int]:
    """Attribute a batch of inbox rows in one transaction; returns how many ended in each status.

    Rows another worker holds are skipped (that worker finishes them); rows already handled are
    left alone, so a redelivered batch changes nothing. Idempotent like the one-at-a-time path.

    With ``top_up`` (the worker's tasks), the batch is the oldest rows still waiting, up to that
    many (or as many as the task names, if more), whichever rows the task names: postbacks are
    decided in the order they arrived, so a deposit rarely comes before its registration (it
    would stay organic until the registration takes it over, the slow way). Ingestion hands rows
    over in small batches as they arrive, one larger batch costs the worker far less than many
    small ones, and each task takes at least as many rows as it names, so every row is taken.
    """
    victims = 0
    while True:
        taken: list[int] = []
        taking = _Taking()
        try:
            # Rollup rows are written last, just before the commit (see keep.deferred).
            with transaction.atomic(), keep.deferred():
                return _attribute_rows(sorted(set(postback_ids)), top_up, taken, taking)
        except IntegrityError as exc:
            logger.info("batch claim conflict, going one at a time: %s", exc)
            return single.postbacks_one_by_one(taken)
        except OperationalError as exc:
            victims += 1
            out_of_turn = isinstance(exc, ledger.OutOfTurn)
            deadlock = getattr(exc.__cause__, "sqlstate", None) == DEADLOCK
            if not (out_of_turn or deadlock) or victims > GIVE_WAY_RETRIES:
                if not taken:
                    raise
                # One row may be the cause (a statement it makes time out): one at a time,
                # each row's attempts are counted and the others go on.
                logger.warning("batch failed, going one at a time: %s", exc)
                return single.postbacks_one_by_one(taken)
            logger.info("batch gave way to another transaction, running it again: %s", exc)
            if out_of_turn:
                ledger.wait_turns(exc.affiliate_ids)
        except Exception as exc:
            if not taken:
                raise
            # A poison row (a value a column cannot hold, a payload that trips a bug) fails
            # the whole batch: one at a time, it alone is marked failed and the rest go on.
            logger.warning("batch failed, going one at a time: %r", exc)
            return single.postbacks_one_by_one(taken)
        finally:
            taking.release(quiet=True)


class _Taking:
    """Taking a batch's rows and their devices' and players' turns is one step among workers.

    Otherwise a worker could take a deposit between another worker taking the older
    registration of its player and taking that player's turn, and decide the deposit blind to
    the registration. A session-level advisory lock, held for the milliseconds of that step (a
    transaction-level one would last the whole batch), and so released by hand, also when the
    batch fails.
    """

    KEY = (0x74616B65, 0)  # "take"

    def __init__(self) -> None:
        self.held = False

    def acquire(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s, %s)", self.KEY)
        self.held = True

    def release(self, *, quiet: bool = False) -> None:
        if not self.held:
            return
        self.held = False
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", self.KEY)
        except DatabaseError:
            if not quiet:
                raise
            # The connection is gone, and the lock with its session; or it is not, and the
            # next use of the connection fails the same way before it could take rows.
            logger.warning("could not release the batch-taking lock", exc_info=True)


def _retry_soon(postback_ids: list[int]) -> None:
    try:
        queue.publish(
            "attribution.process_postbacks", postback_ids, countdown=RETRY_DEFERRED_SECONDS
        )
    except Exception:
        logger.warning("deferred postbacks not queued; the sweep will take them", exc_info=True)


def _lock_rows(postback_ids: list[int], top_up: int) -> list[Postback]:
    waiting = (
        Postback.objects.select_for_update(of=("self",), skip_locked=True)
        .select_related("source", "source__app")
        .filter(status=Postback.Status.RECEIVED)
    )
    if top_up:
        oldest = waiting.order_by("received_at", "pk")[: max(top_up, len(postback_ids))]
        return sorted(oldest, key=lambda row: row.pk)
    return list(waiting.filter(pk__in=postback_ids).order_by("pk"))


def _attribute_rows(
    postback_ids: list[int], top_up: int, taken: list[int], taking: _Taking
) -> dict[str, int]:
    taking.acquire()
    rows = _lock_rows(postback_ids, top_up)
    taken.extend(row.pk for row in rows)
    events, failed = _events(rows)
    events, later = turns.devices_try_lock(events)
    taking.release()
    if later:
        # Their rows stay waiting; once the worker holding their devices has committed, a
        # batch of their own takes them (or, failing that, any task's batch, or the sweep).
        ids = [e.postback_id for e in later]
        transaction.on_commit(lambda: _retry_soon(ids))
    bulk.copy_insert(events)
    for event in events:
        if event.occurred_at is None:
            # As decide._decide does (and, like it, not stored): no time given means when
            # it reached us.
            event.occurred_at = event.postback.received_at
    _attribute(events)
    done = [e.postback_id for e in events]
    Postback.objects.filter(pk__in=done).update(
        status=Postback.Status.PROCESSED,
        attempts=F("attempts") + 1,
        processed_at=timezone.now(),
    )
    counts = {"skipped": len(set(postback_ids) - set(taken)), "deferred": len(later)}
    if done:
        counts[Postback.Status.PROCESSED] = len(done)
    if failed:
        counts[Postback.Status.FAILED] = len(failed)
    return {k: v for k, v in counts.items() if v}
