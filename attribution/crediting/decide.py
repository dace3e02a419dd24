"""Who earned it: attribution of one normalised event to an affiliate, exactly once.

Order (DESIGN, issue 4): our click id; else a device id seen on a click for the same app inside
the window; else, for later events, the affiliate of that device's or player's install or
registration inside the campaign's event window; SKAdNetwork by its campaign mapping; otherwise
organic. Then de-duplication by claim (one install per app and device, one FTD per player, each
event once), then the campaign's fraud rules. Every outcome carries a reason code.
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from affiliates.models import Affiliate, App, Campaign
from attribution.crediting import fraud
from attribution.crediting.lookups import DATABASE, Lookups
from attribution.models import (
    Channel,
    Click,
    Conversion,
    ConversionType,
    Method,
    PostbackEvent,
    Reason,
    SkanMapping,
    SourceKind,
)

logger = logging.getLogger(__name__)

# Steps of a player's story that later events chain to (an install, a registration).
CHAINED = (ConversionType.INSTALL, ConversionType.REGISTRATION)


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


def _decide_by_click(event: PostbackEvent, click: Click, method: str) -> Decision:
    decision = Decision(
        affiliate=click.affiliate,
        campaign=click.campaign,
        click=click,
        method=method,
        touch_type=event.touch_type or "click",
    )
    accepted = click.campaign.country_set
    if accepted and click.country and click.country not in accepted:
        # The campaign's geo rule: traffic from elsewhere is never paid, whoever sent it.
        decision.status, decision.reason = Conversion.Status.REJECTED, Reason.OUTSIDE_GEO
        decision.detail = (
            f"click from {click.country}; the campaign takes {click.campaign.countries}"
        )
        return decision
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


def beats(new: Conversion, held: Conversion, model: str) -> bool:
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


def platform_of(event: PostbackEvent, decision: Decision) -> str:
    """Where the player came from: an MMP's device platform; else that of the install,
    registration or click the event is credited through; else the operator's ``platform``
    parameter; web only when nothing says otherwise.

    The operator's backend (``s2s``) reports a player's registration or deposit from its server:
    its ``platform`` (which defaults to web) says where the report was made, not where the player
    came from, so the credited origin comes first for it.
    """
    if event.platform and event.postback.kind != SourceKind.S2S:
        return event.platform
    if decision.origin is not None and decision.origin.platform:
        return "ios" if decision.origin.method == Method.SKAN else decision.origin.platform
    if decision.click is not None and decision.click.platform:
        return decision.click.platform
    return event.platform or "web"


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
    platform = platform_of(event, decision)
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
