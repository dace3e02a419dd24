"""The cohort report's facts: each player's money per month and currency, kept in a table.

Working the report out from the activity on every request took seconds for a program of
100,000 players (every player-month-product row through Python). The same figures are kept
instead in ``CohortFact``, per player, and the report is one GROUP BY: a player's rows are
worked out again (``refresh``) whenever something they come from changes, which marks the
player stale (``CohortStale``):

- their activity arrives or is revised (``payouts.activity``);
- one of their conversions is written or changes (the ledger follows every one:
  ``ledger.accrue_new`` and ``ledger.ledger_sync``), which moves who brought them, their
  cohort months and their CPA;
- a plan, version or assignment changes: every player (brand 0, player "*").

The report brings the stale players up to date before it reads (the beat does too, every
minute, so that a request rarely has any to do). Figures are kept in the money's own currency;
the report converts each month's sums at the month's last day, as it did before, and CPA at its
entry's day.
"""

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import Count, Q, Sum
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from portal.lib.bulk import insert_many

from . import ngr
from .models import (
    CohortFact,
    CohortStale,
    CpaRule,
    LedgerEntry,
    PlanAssignment,
    PlanVersion,
    PlayerActivity,
)

logger = logging.getLogger(__name__)

EVERYONE = (0, "*")
LIVE = (LedgerEntry.Status.PENDING, LedgerEntry.Status.APPROVED, LedgerEntry.Status.PAID)
CHUNK = 2000


def mark_stale(refs: Iterable[ngr.PlayerRef]) -> None:
    """These players' facts are behind: worked out again before the next report reads them.

    An upsert that updates the row when the player is stale already: it waits for a refresh
    that holds the row (reading the player's data as it was), so that refresh cannot delete
    the mark of a change it did not see. (Doing nothing on the conflict would not wait.) In
    one order, so that two markers cannot wait for each other.
    """
    now = timezone.now()
    rows = [CohortStale(brand_id=b, player_id=p[:100], marked_at=now) for b, p in sorted(set(refs))]
    if rows:
        CohortStale.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["brand_id", "player_id"],
            update_fields=["marked_at"],
            batch_size=1000,
        )


def mark_keys_stale(player_keys: Iterable[str]) -> None:
    """``mark_stale`` for conversions' player keys ("player:<brand>:<id>"; others ignored)."""
    refs = []
    for key in player_keys:
        if key and key.startswith("player:"):
            ref = ngr.player_ref(key)
            if ref is not None:
                refs.append(ref)
    mark_stale(refs)


def mark_all_stale() -> None:
    mark_stale([EVERYONE])


@receiver(post_save, sender=PlanVersion)
@receiver(post_delete, sender=PlanVersion)
@receiver(post_save, sender=PlanAssignment)
@receiver(post_delete, sender=PlanAssignment)
@receiver(post_save, sender=CpaRule)
def _plans_changed(**kwargs) -> None:
    # Whose plan pays a player, and its NGR formula and percents: everybody's figures move.
    mark_all_stale()


def refresh(limit: int | None = None) -> int:
    """Work out the stale players' facts again; returns how many players were done."""
    done = 0
    while True:
        with transaction.atomic():
            stale = list(
                CohortStale.objects.select_for_update(skip_locked=True)
                .order_by("brand_id", "player_id")
                .values_list("pk", "brand_id", "player_id")[:CHUNK]
            )
            if not stale:
                return done
            if any((b, p) == EVERYONE for _, b, p in stale):
                CohortStale.objects.all().delete()
                done += _rebuild_all()
                return done
            refs = {(b, p) for _, b, p in stale}
            _rebuild(refs)
            CohortStale.objects.filter(pk__in=[pk for pk, _, _ in stale]).delete()
            done += len(refs)
        if limit is not None and done >= limit:
            return done


def _rebuild_all() -> int:
    """Every player's facts anew (after a plan change, or the first time)."""
    CohortFact.objects.all().delete()
    known = ngr.players()
    refs = list(known)
    for start in range(0, len(refs), CHUNK):
        part = refs[start : start + CHUNK]
        _write({ref: known[ref] for ref in part})
    if connection.vendor == "postgresql":
        # A table replaced whole: the planner's statistics of the old one would mislead it.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {CohortFact._meta.db_table}")
    return len(refs)


def _players_match(refs: Iterable[ngr.PlayerRef]) -> Q:
    by_brand: dict[int, list[str]] = defaultdict(list)
    for brand_id, player_id in refs:
        by_brand[brand_id].append(player_id)
    match = Q(pk__in=[])
    for brand_id, ids in by_brand.items():
        match |= Q(brand_id=brand_id, player_id__in=ids)
    return match


def _rebuild(refs: set[ngr.PlayerRef]) -> None:
    CohortFact.objects.filter(_players_match(refs)).delete()
    known = ngr.players(keys=[ngr.player_key(ref) for ref in refs])
    _write({ref: player for ref, player in known.items() if ref in refs})


def _write(players: dict[ngr.PlayerRef, ngr.Player]) -> None:
    players = {ref: p for ref, p in players.items() if p.affiliate_id is not None}
    if not players:
        return
    versions = ngr.Versions()

    def fact(player: ngr.Player, **values) -> CohortFact:
        return CohortFact(
            brand_id=player.brand_id,
            player_id=player.player_id,
            affiliate_id=player.affiliate_id,
            campaign_id=player.campaign_id,
            channel=player.channel,
            registration_month=ngr.month_of(player.registered_at),
            ftd_month=ngr.month_of(player.ftd_at),
            **values,
        )

    facts = [fact(player) for player in players.values()]
    money: dict[tuple, list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 3)
    for brand_id, player_id, month, product, currency, *sums, deposits in _activity(players):
        ref = (brand_id, player_id)
        month = month if isinstance(month, date) else month.date()
        # In the money's own currency (rate 1): the report converts the sums when it reads.
        month_ngr, share = ngr.player_month(versions, players[ref], month, product, sums)
        kept = money[ref, month, currency]
        kept[0] += deposits
        kept[1] += month_ngr
        kept[2] += share
    counted: set[tuple] = set()
    for (ref, month, currency), (deposits, ngr_, share) in sorted(money.items()):
        # A month in two currencies is two rows; the player is active in it once.
        first = (ref, month) not in counted
        counted.add((ref, month))
        facts.append(
            fact(
                players[ref],
                month=month,
                currency=currency,
                deposits=deposits,
                ngr=ngr_,
                commission=share,
                active=first,
            )
        )
    cpa: dict[tuple, Decimal] = defaultdict(Decimal)
    entries = (
        LedgerEntry.objects.filter(
            kind=LedgerEntry.Kind.CPA,
            status__in=LIVE,
            conversion__player_key__in=[ngr.player_key(ref) for ref in players],
        )
        .exclude(derived__kind=LedgerEntry.Kind.REVERSAL)
        .values_list("conversion__player_key", "conversion__occurred_at", "amount", "currency")
    )
    for key, at, amount, currency in entries:
        ref = ngr.player_ref(key)
        if ref in players:
            cpa[ref, at.date(), currency] += amount
    for (ref, day, currency), amount in cpa.items():
        facts.append(
            fact(
                players[ref],
                month=day.replace(day=1),
                day=day,
                currency=currency,
                commission=amount,
            )
        )
    insert_many(facts)


def _activity(players: dict[ngr.PlayerRef, ngr.Player]) -> Iterable[tuple]:
    return ngr.monthly_activity(PlayerActivity.objects.filter(_players_match(players)))


# --- reading ------------------------------------------------------------------------------------


def sums(
    *,
    by: str,
    through: date,
    affiliate_ids: list[int] | None,
    campaign_id: int | None,
    channel: str,
):
    """What the cohort report needs, summed in the database in one pass: players per cohort,
    active players per cohort and month (one row of a player's month is marked active), and
    money per cohort, month, day (CPA) and currency."""
    column = "ftd_month" if by == "ftd_month" else "registration_month"
    facts = CohortFact.objects.filter(**{f"{column}__isnull": False, f"{column}__lte": through})
    if affiliate_ids is not None:
        facts = facts.filter(affiliate_id__in=affiliate_ids)
    if campaign_id is not None:
        facts = facts.filter(campaign_id=campaign_id)
    if channel:
        facts = facts.filter(channel=channel)
    aggregates = {
        "n": Count("pk"),
        "actives": Count("pk", filter=Q(active=True)),
        "deposits_sum": Sum("deposits"),
        "ngr_sum": Sum("ngr"),
        "commission_sum": Sum("commission"),
    }
    # Activity (and the players' own rows) apart from CPA: grouped without the day, the
    # planner sees a few hundred groups and hashes them; with it, it guessed tens of thousands
    # and sorted on disk (twice the time at 100,000 players).
    activity = (
        facts.filter(day__isnull=True)
        .values_list(column, "month", "currency")
        .annotate(**aggregates)
        .order_by()
    )
    cpa = (
        facts.filter(day__isnull=False)
        .values_list(column, "month", "currency", "day")
        .annotate(**aggregates)
        .order_by()
    )
    members: dict[date, int] = {}
    active: dict[tuple[date, date], int] = defaultdict(int)
    money = []
    rows = [(start, month, currency, None, *sums) for start, month, currency, *sums in activity]
    rows += list(cpa)
    for start, month, currency, day, count, actives, deposits, ngr_sum, commission in rows:
        if month is None:
            members[start] = members.get(start, 0) + count
            continue
        active[start, month] += actives
        money.append((start, month, day, currency, deposits, ngr_sum, commission))
    return members, active, money
