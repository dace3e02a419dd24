"""Who earned it: attribution of one normalised event to an affiliate, exactly once.

Order (DESIGN, issue 4): our click id; else a device id seen on a click for the same app inside
the window; else, for later events, the affiliate of that device's or player's install or
registration inside the campaign's event window; SKAdNetwork by its campaign mapping; otherwise
organic. Then de-duplication by claim (one install per app and device, one FTD per player, each
event once), then the campaign's fraud rules. Every outcome carries a reason code.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from affiliates.models import Affiliate, App, Campaign
from affiliates.services import Actor, audit_record
from payouts import fx, ledger

from . import fraud, outbound, rollup
from .lookups import DATABASE, Lookups
from .models import (
    Channel,
    Click,
    Conversion,
    ConversionType,
    Identity,
    Method,
    PostbackEvent,
    Reason,
    SkanMapping,
    SourceKind,
)

logger = logging.getLogger(__name__)

CLAIM_RETRIES = 5


@dataclass
class Decision:
    """The attribution of one event before it is written."""

    affiliate: Affiliate | None = None
    campaign: Campaign | None = None
    click: Click | None = None
    method: str = Method.NONE
    touch_type: str = ""
    status: str = Conversion.Status.APPROVED
    reason: str = Reason.OK
    detail: str = ""
    origin: Conversion | None = None  # the install/registration an event chains to
    notes: list[str] = field(default_factory=list)


def device_keys(event: PostbackEvent) -> list[str]:
    """The ids that name this device, the most portable first (they match across MMPs)."""
    keys = []
    if event.idfa:
        keys.append(f"idfa:{event.idfa.upper()}")
    if event.gaid:
        keys.append(f"gaid:{event.gaid.lower()}")
    if event.idfv:
        keys.append(f"idfv:{event.idfv.upper()}")
    if event.mmp_device_id:
        keys.append(f"{event.postback.kind}:{event.mmp_device_id}")
    return keys


def player_keys(event: PostbackEvent, brand_id: int | None) -> list[str]:
    keys = [f"player:{brand_id or 0}:{event.player_id}"] if event.player_id else []
    return keys + device_keys(event)


def _lock_ids(event: PostbackEvent) -> list[str]:
    """The device and player ids an event can chain through, whatever brand they fall under,
    and the operator's transaction (its later reports may name nothing else)."""
    ids = [f"player:{event.player_id}"] if event.player_id else []
    if is_later_report(event):
        ids.append(f"tx:{event.source_id}:{event.txid}")
    return ids + device_keys(event)


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


def brand_of(event: PostbackEvent) -> int | None:
    """The brand an event belongs to: its app's, else its postback source's."""
    if event.app is not None:
        return event.app.brand_id
    return event.source.brand_id if event.source is not None else None


def identity_keys(conversion: Conversion, event: PostbackEvent) -> list[str]:
    """The keys an install or registration is remembered by (``Identity``), once each."""
    return list(dict.fromkeys(player_keys(event, conversion.brand_id)))


def orphans_of(origin: Conversion, keys: list[str]) -> QuerySet[Conversion]:
    """Organic events of these devices or players inside ``origin``'s event window."""
    window = timedelta(days=origin.campaign.event_window_days if origin.campaign else 180)
    return Conversion.objects.filter(
        player_key__in=keys,
        affiliate__isnull=True,
        is_winner=True,
        reason=Reason.ORGANIC,
        occurred_at__gte=origin.occurred_at,
        occurred_at__lte=origin.occurred_at + window,
    ).exclude(pk=origin.pk)


def _remember(conversion: Conversion, event: PostbackEvent) -> None:
    """Record the ids an install or registration is known by, against the claim's winner.

    A duplicate report of the same install (another MMP, its own device id) adds its ids to the
    winner, so that sender's later events chain to the right affiliate too.
    """
    if conversion.type not in (ConversionType.INSTALL, ConversionType.REGISTRATION):
        return
    owner = conversion if conversion.is_winner else conversion.duplicate_of
    if owner is None:
        return
    keys = identity_keys(conversion, event)
    Identity.objects.bulk_create(
        [Identity(key=key[:200], conversion=owner, occurred_at=owner.occurred_at) for key in keys],
        ignore_conflicts=True,
    )
    if owner.affiliate_id is not None:
        _adopt_orphans(owner, keys)


def _adopt_orphans(origin: Conversion, keys: list[str]) -> None:
    """Events of this device or player that arrived before its install was known (a retried
    install postback, say) were left organic: credit them now."""
    orphans = orphans_of(origin, keys)
    for orphan in orphans.select_for_update(of=("self",)).order_by("occurred_at", "pk"):
        conversion_reattribute(conversion=orphan)


def _decide_by_click(event: PostbackEvent, click: Click, method: str) -> Decision:
    decision = Decision(
        affiliate=click.affiliate,
        campaign=click.campaign,
        click=click,
        method=method,
        touch_type=event.touch_type or "click",
    )
    if event.occurred_at is None:
        return decision
    elapsed = event.occurred_at - click.created_at
    if elapsed < timedelta(0):
        decision.status, decision.reason = Conversion.Status.REJECTED, Reason.BEFORE_CLICK
        decision.detail = f"{event.kind} {-elapsed} before the click"
        return decision
    window = (
        click.campaign.click_lookback_days
        if event.conversion_type == ConversionType.INSTALL
        else click.campaign.event_window_days
    )
    if elapsed > timedelta(days=window):
        decision.reason = Reason.OUTSIDE_LOOKBACK
        decision.detail = f"{elapsed} after the click; the window is {window} days"
    return decision


def _decide(
    event: PostbackEvent, app: App | None, brand_id: int | None, lookups: Lookups
) -> Decision:
    if event.occurred_at is None:
        # A sender that gives no time (the operator's backend often does not): it happened
        # when it reached us.
        event.occurred_at = event.postback.received_at
    click = lookups.click_by_id(event.click_id)
    if click is not None:
        return _decide_by_click(event, click, Method.CLICK_ID)
    if event.conversion_type == ConversionType.INSTALL:
        model = Campaign.AttributionModel.LAST_CLICK
        click = lookups.click_by_device(event, app, model)
        if click is not None:
            return _decide_by_click(event, click, Method.DEVICE_ID)
        return Decision(reason=Reason.ORGANIC)
    keys = player_keys(event, brand_id)
    origin = lookups.origin(keys, event.occurred_at) if keys else None
    if origin is not None and origin.affiliate_id:
        window = timedelta(days=origin.campaign.event_window_days if origin.campaign else 180)
        decision = Decision(
            affiliate=origin.affiliate,
            campaign=origin.campaign,
            click=origin.click,
            method=Method.INSTALL_CHAIN,
            touch_type=origin.touch_type,
            origin=origin,
        )
        if event.occurred_at - origin.occurred_at > window:
            decision.reason = Reason.OUTSIDE_LOOKBACK
            decision.detail = f"{origin.type} #{origin.pk} is older than the event window"
        return decision
    return Decision(reason=Reason.ORGANIC)


def claim_key_of(event: PostbackEvent, app: App | None, brand_id: int | None) -> str:
    kind = event.conversion_type
    devices = device_keys(event)
    scope = f"app{app.pk}" if app else f"brand{brand_id or 0}"
    if kind == ConversionType.INSTALL and devices:
        return f"install:{scope}:{devices[0]}"
    if kind == ConversionType.FTD and (event.player_id or devices):
        player = player_keys(event, brand_id)[0]
        return f"ftd:brand{brand_id or 0}:{player}"
    if kind == ConversionType.REGISTRATION and event.player_id:
        return f"registration:brand{brand_id or 0}:player:{event.player_id}"
    if event.txid:
        return f"{kind}:brand{brand_id or 0}:tx:{event.txid}"
    return f"{kind}:postback:{event.postback.kind}:{event.postback.dedup_key}"[:255]


def _beats(new: Conversion, held: Conversion, model: str) -> bool:
    """Does ``new`` take the claim from ``held``? Attributed beats organic; then the model."""
    if held.status == Conversion.Status.REJECTED and held.reason != Reason.DUPLICATE_CLAIM:
        # A fraud-rejected holder loses to any clean, attributed claim.
        return new.affiliate_id is not None and new.status != Conversion.Status.REJECTED
    if new.status == Conversion.Status.REJECTED:
        return False
    if held.affiliate_id is None:
        return new.affiliate_id is not None
    if new.affiliate_id is None or new.click_id is None or held.click_id is None:
        return False
    if new.type not in (ConversionType.INSTALL,):
        return False  # events and deposits: the first report holds
    new_at, held_at = new.click.created_at, held.click.created_at
    if model == Campaign.AttributionModel.FIRST_CLICK:
        return new_at < held_at
    return new_at > held_at


def ledger_follow(conversion: Conversion, *, actor: Actor = None) -> None:
    """Bring the commission ledger in line with the conversion, in this transaction.

    Without the FX rate it needs, the conversion stays marked unsynced and the ledger sweep
    retries once a manager has added the rate; attribution itself never waits for money.
    """
    Conversion.objects.filter(pk=conversion.pk).update(ledger_synced=False)
    try:
        with transaction.atomic():
            ledger.ledger_sync(conversion=conversion, actor=actor)
    except fx.FxRateMissing as exc:
        logger.warning("ledger waits for an FX rate conversion=%s: %s", conversion.pk, exc)


def conversion_set_status(
    *, conversion: Conversion, status: str, reason: str, actor: Actor = None, note: str = ""
) -> Conversion:
    """Change a conversion's status, keeping its rollups in step, with an audit row."""
    if conversion.status == status and conversion.reason == reason:
        return conversion
    old_status = conversion.status
    rollup.conversion_apply(conversion, sign=-1)
    old = f"{conversion.status}/{conversion.reason}"
    conversion.status, conversion.reason = status, reason
    if note:
        conversion.detail = note[:500]
    conversion.save(update_fields=["status", "reason", "detail", "updated_at"])
    rollup.conversion_apply(conversion, sign=1)
    audit_record(
        obj=conversion, field="status", old=old, new=f"{status}/{reason}", actor=actor, note=note
    )
    ledger_follow(conversion, actor=actor)
    outbound.outbound_decided(conversion=conversion, old_status=old_status)
    return conversion


def _insert_claiming(conversion: Conversion, model: str) -> Conversion:
    """Insert ``conversion``, taking or losing its claim; safe with many workers at once."""
    for _ in range(CLAIM_RETRIES):
        try:
            with transaction.atomic():
                conversion.is_winner = True
                conversion.save(force_insert=True)
            return conversion
        except IntegrityError:
            conversion.pk = None
        held = (
            Conversion.objects.select_for_update(of=("self",))
            .select_related("click")
            .filter(claim_key=conversion.claim_key, is_winner=True)
            .first()
        )
        if held is None:
            continue  # the holder just gave way: try again
        if _beats(conversion, held, model):
            held.is_winner = False
            held.save(update_fields=["is_winner", "updated_at"])
            conversion.is_winner = True
            conversion.save(force_insert=True)
            held.duplicate_of = conversion
            held.save(update_fields=["duplicate_of", "updated_at"])
            # The ids the install was known by now lead to its new winner.
            Identity.objects.bulk_create(
                [
                    Identity(key=i.key, conversion=conversion, occurred_at=conversion.occurred_at)
                    for i in held.identities.all()
                ],
                ignore_conflicts=True,
            )
            conversion_set_status(
                conversion=held,
                status=Conversion.Status.REJECTED,
                reason=Reason.DUPLICATE_CLAIM,
                note=f"claim taken by conversion #{conversion.pk}",
            )
            return conversion
        conversion.is_winner = False
        conversion.duplicate_of = held
        conversion.status = Conversion.Status.REJECTED
        conversion.reason = (
            Reason.DUPLICATE_FTD
            if conversion.type == ConversionType.FTD
            else Reason.DUPLICATE_CLAIM
        )
        conversion.detail = f"the claim is held by conversion #{held.pk}"
        conversion.save(force_insert=True)
        return conversion
    raise IntegrityError(f"could not settle claim {conversion.claim_key}")


def _skan_conversion(event: PostbackEvent) -> Conversion:
    """The unsaved conversion an Apple postback makes: aggregated, never user-level."""
    skan = event.skan or {}
    mapping = None
    if event.app_id:
        mapping = (
            SkanMapping.objects.select_related("campaign", "affiliate")
            .filter(
                app_id=event.app_id,
                ad_network_id=skan.get("ad_network_id", ""),
                source_identifier=str(
                    skan.get("source_identifier") or skan.get("campaign_id") or ""
                ),
            )
            .first()
        )
    winning = event.kind == PostbackEvent.Kind.INSTALL
    verdict = skan.get("verdict")
    reason = Reason.OK if mapping else Reason.ORGANIC
    status = Conversion.Status.APPROVED
    if not winning:
        status = Conversion.Status.REJECTED
        reason = Reason.DEVELOPMENT if verdict == "development" else Reason.NOT_WINNING
    sequence = skan.get("postback_sequence_index") or 0
    label = decode_conversion_value(event.app, skan) if event.app else ""
    # Only the first window's postback is the install; later windows update its value.
    kind = ConversionType.INSTALL if sequence == 0 else (label or ConversionType.CUSTOM)
    conversion = Conversion(
        type=kind,
        channel=Channel.MOBILE,
        platform="ios",
        app=event.app,
        brand_id=event.app.brand_id if event.app else None,
        campaign=mapping.campaign if mapping else None,
        affiliate=mapping.affiliate if mapping else None,
        method=Method.SKAN,
        touch_type="click" if skan.get("interaction_type") in ("click", "1") else "impression",
        occurred_at=event.created_at or timezone.now(),
        country=event.country,
        status=status,
        reason=reason,
        detail=event.blocked_reason,
        claim_key=f"skan:{skan.get('dedup_key', event.postback.dedup_key)}:{kind}"[:255],
        event=event,
        skan_sequence_index=sequence,
        skan_conversion_value=skan.get("conversion_value"),
        skan_coarse_value=skan.get("coarse_conversion_value") or "",
    )
    return conversion


def decode_conversion_value(app: App, skan: dict) -> str:
    """The conversion type an app's schema gives this postback's fine or coarse value, or ""."""
    schema = app.skan_schema or {}
    fine, coarse = skan.get("conversion_value"), skan.get("coarse_conversion_value") or ""
    for key, label in schema.items():
        key = str(key).strip().lower()
        if coarse and key == coarse:
            return label
        if fine is None:
            continue
        low, _, high = key.partition("-")
        if low.isdigit() and int(low) <= fine <= int(high or low):
            return label
    return ""


def build_conversion(
    event: PostbackEvent, *, pk: int | None = None, lookups: Lookups = DATABASE
) -> Conversion:
    """The conversion ``event`` makes under today's rules and configuration, not yet saved.

    ``pk`` names the conversion it would replace, so the fraud rules do not count it twice.
    """
    if event.postback.kind in (SourceKind.SKADNETWORK, SourceKind.ADATTRIBUTIONKIT):
        conversion = _skan_conversion(event)
        conversion.pk = pk
        return conversion
    app = event.app
    brand_id = brand_of(event)
    decision = _decide(event, app, brand_id, lookups)
    campaign = decision.campaign
    occurred_at = event.occurred_at or event.postback.received_at
    ctit = None
    if decision.click and event.conversion_type == ConversionType.INSTALL:
        ctit = int((occurred_at - decision.click.created_at).total_seconds())
    platform = event.platform or (decision.click.platform if decision.click else "") or "web"
    conversion = Conversion(
        pk=pk,
        type=event.conversion_type,
        channel=Channel.WEB if platform == "web" else Channel.MOBILE,
        platform=platform,
        app=app,
        brand_id=brand_id or (campaign.brand_id if campaign else None),
        campaign=campaign,
        affiliate=decision.affiliate,
        click=decision.click,
        method=decision.method,
        touch_type=decision.touch_type[:16],
        occurred_at=occurred_at,
        ctit_seconds=ctit,
        revenue=event.revenue,
        currency=event.currency if event.revenue is not None else "",
        country=event.country or (decision.click.country if decision.click else ""),
        player_key=(player_keys(event, brand_id) or [""])[0][:200],
        ip=event.ip,
        status=decision.status,
        reason=decision.reason,
        detail=decision.detail,
        claim_key=claim_key_of(event, app, brand_id)[:255],
        event=event,
    )
    if conversion.affiliate_id is not None:
        fraud.judge(conversion=conversion, event=event, campaign=campaign, lookups=lookups)
    elif event.blocked_reason or event.kind == PostbackEvent.Kind.REJECTED:
        # Blocked by the MMP: recorded, never counted, whoever (if anyone) it was credited to.
        conversion.status, conversion.reason = Conversion.Status.REJECTED, Reason.MMP_BLOCKED
        conversion.detail = (event.blocked_reason or "rejected by the MMP")[:500]
    else:
        conversion.status = Conversion.Status.APPROVED
    if event.status == "declined":
        conversion.status, conversion.reason = Conversion.Status.REJECTED, Reason.DECLINED
    elif event.status == "pending" and conversion.status == Conversion.Status.APPROVED:
        conversion.status = Conversion.Status.PENDING
    return conversion


def is_later_report(event: PostbackEvent) -> bool:
    """Can ``event`` be the operator's later report of a transaction already reported?"""
    s2s = event.postback.kind == SourceKind.S2S
    return s2s and bool(event.txid) and event.source_id is not None


def first_report(event: PostbackEvent) -> Conversion | None:
    """The conversion of the operator's first report of ``event``'s transaction, if another
    event of the same source and txid came before it; locked, as a manager's review locks it."""
    if not is_later_report(event):
        return None
    return (
        Conversion.objects.select_for_update(of=("self",))
        .filter(event__source_id=event.source_id, event__txid=event.txid)
        .exclude(event=event)
        .order_by("event__postback_id")
        .first()
    )


REPORTED_STATUS = {
    "approved": Conversion.Status.APPROVED,
    "pending": Conversion.Status.PENDING,
    "declined": Conversion.Status.REJECTED,
}
# What an operator's report may change: its own statuses, not a rule's, a claim's or a manager's.
REPORTABLE_REASONS = (Reason.OK, Reason.ORGANIC, Reason.DECLINED)


def conversion_reported(*, conversion: Conversion, event: PostbackEvent) -> Conversion:
    """Apply the operator's later report of a transaction to its conversion (``first_report``).

    Approved, pending or declined: the deposit the operator confirms, holds or declines, with
    the ledger (a paid commission is reversed), rollups, an audit row and the affiliate's
    postbacks following. A report without a status, or one that would override a fraud rule, a
    lost claim or a manager's decision, changes nothing; the event is kept either way.
    """
    wanted = REPORTED_STATUS.get(event.status)
    if wanted is None or not conversion.is_winner or conversion.reason not in REPORTABLE_REASONS:
        return conversion
    if wanted == Conversion.Status.REJECTED:
        reason = Reason.DECLINED
    else:
        reason = Reason.OK if conversion.affiliate_id else Reason.ORGANIC
    return conversion_set_status(
        conversion=conversion,
        status=wanted,
        reason=reason,
        note=f"the operator reported {event.status} (postback {event.postback_id})",
    )


def conversion_for_event(*, event: PostbackEvent) -> Conversion:
    """Attribute one normalised event and write its conversion (and rollups). Idempotent by event.

    Called inside the worker's transaction that created ``event``. The operator's later report
    of a transaction makes no conversion of its own: it is applied to the first report's.
    """
    existing = Conversion.objects.filter(event=event).first()
    if existing is not None:
        return existing
    if (first := first_report(event)) is not None:
        return conversion_reported(conversion=first, event=event)
    conversion = build_conversion(event)
    campaign = conversion.campaign
    model = campaign.attribution_model if campaign else Campaign.AttributionModel.LAST_CLICK
    conversion = _insert_claiming(conversion, model)
    if conversion.method != Method.SKAN:
        _remember(conversion, event)
    rollup.conversion_apply(conversion)
    ledger_follow(conversion)
    outbound.outbound_decided(conversion=conversion, old_status=None)
    return conversion


REATTRIBUTED_FIELDS = ("affiliate", "campaign", "click", "method", "touch_type", "status", "reason")


@dataclass
class Reattribution:
    conversion: Conversion
    old_affiliate_id: int | None
    old_status: str


def conversion_reattribute(*, conversion: Conversion, actor: Actor = None) -> Reattribution | None:
    """Re-run attribution for one conversion under today's configuration; None if unchanged.

    A conversion that lost its claim stays a duplicate; a manager's decision is kept. Money
    moves with it: rollups (and, through the status change, the ledger) follow.
    """
    if not conversion.is_winner or conversion.reason == Reason.MANAGER:
        return None
    event = PostbackEvent.objects.select_related("postback", "source", "app").get(
        pk=conversion.event_id
    )
    fresh = build_conversion(event, pk=conversion.pk)
    if all(getattr(fresh, f) == getattr(conversion, f) for f in REATTRIBUTED_FIELDS):
        return None
    change = Reattribution(conversion, conversion.affiliate_id, conversion.status)
    rollup.conversion_apply(conversion, sign=-1)
    old = f"{conversion.affiliate_id or 'organic'}/{conversion.status}/{conversion.reason}"
    for name in (*REATTRIBUTED_FIELDS, "detail", "ctit_seconds"):
        setattr(conversion, name, getattr(fresh, name))
    conversion.save()
    rollup.conversion_apply(conversion, sign=1)
    new = f"{conversion.affiliate_id or 'organic'}/{conversion.status}/{conversion.reason}"
    audit_record(
        obj=conversion, field="attribution", old=old, new=new, actor=actor, note="reattribute"
    )
    ledger_follow(conversion, actor=actor)
    outbound.outbound_decided(conversion=conversion, old_status=change.old_status)
    return change


def conversion_review(
    *, conversion: Conversion, approve: bool, actor: Actor, note: str = ""
) -> Conversion:
    """A manager's decision on a held (or any) conversion."""
    with transaction.atomic(), rollup.deferred():
        locked = Conversion.objects.select_for_update().get(pk=conversion.pk)
        if approve:
            status, reason = Conversion.Status.APPROVED, Reason.MANAGER
        else:
            # A rejection keeps the rule's code when a rule held it: that is the why.
            status = Conversion.Status.REJECTED
            reason = locked.reason if locked.reason in fraud.RULE_REASONS else Reason.MANAGER
        return conversion_set_status(
            conversion=locked,
            status=status,
            reason=reason,
            actor=actor,
            note=note or ("approved by a manager" if approve else "rejected by a manager"),
        )
