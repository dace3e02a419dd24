"""A batch's answers to ``Lookups``' questions: prefetched in a few queries, plus what the batch
itself has decided so far. Reads only; the batch path (``processing.batch``) writes."""

import ipaddress
import logging
from collections import defaultdict
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Q

from affiliates.models import App
from attribution.crediting import decide
from attribution.crediting.decide import CHAINED
from attribution.crediting.lookups import (
    DEFAULT_POLICY,
    DUPLICATE_REASONS,
    MAX_LOOKBACK,
    Lookups,
    latest_inside,
)
from attribution.models import (
    APPLE_KINDS,
    Click,
    Conversion,
    ConversionType,
    FraudPolicy,
    Identity,
    PostbackEvent,
    Reason,
)

logger = logging.getLogger(__name__)


def _ip(value: str | None) -> str:
    try:
        return str(ipaddress.ip_address(value)) if value else ""
    except ValueError:
        return str(value)


class BatchLookups(Lookups):
    """Answers for a batch: its prefetched rows plus what the batch has decided since."""

    def __init__(self, events: list[PostbackEvent]) -> None:
        self.pending: list[Conversion] = []
        self.pending_claims: set[str] = set()
        self.pending_identities: dict[str, list[tuple[datetime, int, Conversion]]] = defaultdict(
            list
        )
        self.pending_organic: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        self.pending_installs: dict[tuple, list[Conversion]] = defaultdict(list)
        self.pending_same: dict[tuple, list[Conversion]] = defaultdict(list)
        self.events = events
        times = [e.occurred_at for e in events]
        self.lo, self.hi = min(times), max(times)
        self._clicks()
        self._identities()
        self._claims()
        self._policies()
        self._bursts()
        self._orphans()
        self._floods()
        self._reports()

    # --- prefetching ---------------------------------------------------------------------------

    def _clicks(self) -> None:
        ids = {e.click_id[:64] for e in self.events if e.click_id}
        self.clicks = {
            c.click_id: c
            for c in Click.objects.select_related("affiliate", "campaign").filter(click_id__in=ids)
        }
        # Installs that no click id names may match a click by device id.
        wanted = [
            e
            for e in self.events
            if e.conversion_type == ConversionType.INSTALL
            and e.click_id[:64] not in self.clicks
            and e.app is not None
            and (e.gaid or e.idfa)
        ]
        self.device_events = {id(e) for e in wanted}
        self.device_clicks: list[Click] = []
        if wanted:
            gaids = {e.gaid.lower() for e in wanted if e.gaid}
            idfas = {e.idfa.upper() for e in wanted if e.idfa}
            apps = {e.app.pk for e in wanted}
            self.device_clicks = list(
                Click.objects.select_related("affiliate", "campaign")
                .filter(Q(gaid__in=gaids) | Q(idfa__in=idfas))
                .filter(Q(campaign__ios_app_id__in=apps) | Q(campaign__android_app_id__in=apps))
                .filter(created_at__lte=self.hi, created_at__gte=self.lo - MAX_LOOKBACK)
                .order_by("-created_at")
            )

    def _identities(self) -> None:
        self.identity_keys = {
            key
            for e in self.events
            if e.conversion_type != ConversionType.INSTALL
            for key in decide.player_keys(e, decide.brand_of(e))
        }
        self.identities: dict[str, list[tuple[datetime, int, Conversion]]] = defaultdict(list)
        found = (
            Identity.objects.select_related(
                "conversion__affiliate", "conversion__campaign", "conversion__click"
            )
            .filter(
                key__in=self.identity_keys,
                occurred_at__lte=self.hi,
                conversion__is_winner=True,
                conversion__affiliate__isnull=False,
            )
            .exclude(conversion__status=Conversion.Status.REJECTED)
        )
        for identity in found:
            self.identities[identity.key].append(
                (identity.occurred_at, identity.pk, identity.conversion)
            )

    def _claims(self) -> None:
        keys = {
            decide.claim_key_of(e, e.app, decide.brand_of(e))[:255]
            for e in self.events
            if e.postback.kind not in APPLE_KINDS
        }
        self.held = set(
            Conversion.objects.filter(claim_key__in=keys, is_winner=True).values_list(
                "claim_key", flat=True
            )
        )

    def _campaign_ids(self) -> set[int]:
        ids = {c.campaign_id for c in self.clicks.values()}
        ids |= {c.campaign_id for c in self.device_clicks}
        ids |= {c.campaign_id for rows in self.identities.values() for _, _, c in rows}
        return {i for i in ids if i}

    def _policies(self) -> None:
        self.policy_known = self._campaign_ids()
        self.policies = {
            p.campaign_id: p for p in FraudPolicy.objects.filter(campaign_id__in=self.policy_known)
        }

    def _bursts(self) -> None:
        window = max(
            [p.burst_window_minutes for p in self.policies.values()]
            + [DEFAULT_POLICY.burst_window_minutes]
        )
        self.burst_from = self.lo - timedelta(minutes=window)
        self.burst_ips = {_ip(e.ip) for e in self.events if e.ip}
        self.burst_keys = {
            keys[0] for e in self.events if (keys := decide.player_keys(e, decide.brand_of(e)))
        }
        # (type, "ip" or "player_key", value) -> the times of stored conversions
        self.burst_times: dict[tuple, list[datetime]] = defaultdict(list)
        rows = (
            Conversion.objects.filter(
                Q(ip__in=self.burst_ips) | Q(player_key__in=self.burst_keys),
                occurred_at__gte=self.burst_from,
                occurred_at__lte=self.hi,
            )
            .exclude(reason__in=DUPLICATE_REASONS)
            .values_list("type", "ip", "player_key", "occurred_at")
        )
        for kind, ip, key, at in rows:
            if ip:
                self.burst_times[kind, "ip", _ip(ip)].append(at)
            if key:
                self.burst_times[kind, "player_key", key].append(at)

    def _orphans(self) -> None:
        brands = {decide.brand_of(e) for e in self.events}
        brands |= {c.campaign.brand_id for c in self.clicks.values()}
        self.orphan_keys = set()
        for e in self.events:
            if e.conversion_type in CHAINED:
                for brand in brands:
                    self.orphan_keys.update(decide.player_keys(e, brand))
        self.orphans: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        rows = Conversion.objects.filter(
            player_key__in=self.orphan_keys,
            affiliate__isnull=True,
            is_winner=True,
            reason=Reason.ORGANIC,
        ).values_list("player_key", "occurred_at", "pk")
        for key, at, pk in rows:
            self.orphans[key].append((at, pk))

    def _floods(self) -> None:
        """Installs and clicks in each candidate install's flooding window, in one statement."""
        # key -> (clicks counted to flood_min_clicks + 1, that cap, installs, clicks counted
        # to the limit those installs give, that cap); the last three None when not needed.
        self.flood: dict[tuple, tuple] = {}
        wanted = {}
        for e in self.events:
            if e.conversion_type != ConversionType.INSTALL:
                continue
            click = self.clicks.get(e.click_id[:64]) if e.click_id else None
            if click is None and id(e) in self.device_events:
                click = next((c for c in self.device_clicks if self._device_match(c, e)), None)
            if click is None or click.campaign_id not in self.policy_known:
                continue
            policy = self.policies.get(click.campaign_id, DEFAULT_POLICY)
            if policy.flood_action == FraudPolicy.Action.OFF:
                continue
            since = e.occurred_at - timedelta(hours=policy.flood_window_hours)
            key = (click.affiliate_id, click.campaign_id, since, e.occurred_at)
            wanted[key] = (policy.flood_clicks_per_install, policy.flood_min_clicks)
        if not wanted:
            return
        rows = [(n, *key, *limits) for n, (key, limits) in enumerate(wanted.items())]
        values = ", ".join(["(%s, %s, %s, %s::timestamptz, %s::timestamptz, %s, %s)"] * len(rows))
        # Clicks first, up to the minimum: no more than that and the rule cannot fire, so the
        # installs (and the clicks up to the real limit) are counted only past it.
        sql = f"""
            SELECT v.n, few.n, installs.n, clicks.n, greatest(v.r * (installs.n + 1), v.m) + 1
            FROM (VALUES {values}) AS v(n, a, c, s, t, r, m)
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM (
                    SELECT 1 FROM attribution_click k
                    WHERE k.affiliate_id = v.a AND k.campaign_id = v.c
                      AND k.created_at >= v.s AND k.created_at <= v.t
                    LIMIT v.m + 1
                ) AS counted
            ) AS few
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM attribution_conversion x
                WHERE few.n > v.m
                  AND x.affiliate_id = v.a AND x.campaign_id = v.c AND x.type = 'install'
                  AND x.is_winner AND x.occurred_at >= v.s AND x.occurred_at <= v.t
            ) AS installs
            CROSS JOIN LATERAL (
                SELECT count(*) AS n FROM (
                    SELECT 1 FROM attribution_click k
                    WHERE few.n > v.m
                      AND k.affiliate_id = v.a AND k.campaign_id = v.c
                      AND k.created_at >= v.s AND k.created_at <= v.t
                    LIMIT greatest(v.r * (installs.n + 1), v.m) + 1
                ) AS counted
            ) AS clicks
        """  # noqa: S608 - only placeholders are interpolated
        keys = list(wanted)
        with connection.cursor() as cursor:
            cursor.execute(sql, [p for row in rows for p in row])
            for n, few, installs, clicks, cap in cursor.fetchall():
                minimum = rows[n][-1]
                if few <= minimum:
                    self.flood[keys[n]] = (few, minimum + 1, None, None, None)
                else:
                    self.flood[keys[n]] = (few, minimum + 1, installs, clicks, cap)

    def _reports(self) -> None:
        """Transactions the operator reported before this batch: a later report of one goes the
        one-at-a-time way (``single.conversion_reported``)."""
        wanted = {(e.source_id, e.txid) for e in self.events if decide.is_later_report(e)}
        self.reported: set[tuple[int, str]] = set()
        self.pending_reports: set[tuple[int, str]] = set()
        if wanted:
            stored = (
                PostbackEvent.objects.filter(
                    source_id__in={source for source, _ in wanted},
                    txid__in={txid for _, txid in wanted},
                )
                .exclude(pk__in=[e.pk for e in self.events])
                .values_list("source_id", "txid")
            )
            self.reported = set(stored) & wanted

    def reported_before(self, event: PostbackEvent) -> bool:
        key = (event.source_id, event.txid)
        return decide.is_later_report(event) and (
            key in self.reported or key in self.pending_reports
        )

    # --- what the batch decided --------------------------------------------------------------

    def add(self, conversion: Conversion, event: PostbackEvent) -> None:
        self.pending.append(conversion)
        if decide.is_later_report(event):
            self.pending_reports.add((event.source_id, event.txid))
        self.pending_claims.add(conversion.claim_key)
        # What the fraud counts look the batch's own conversions up by.
        if conversion.type == ConversionType.INSTALL:
            pair = (conversion.affiliate_id, conversion.campaign_id)
            self.pending_installs[pair].append(conversion)
        if conversion.reason not in DUPLICATE_REASONS:
            if conversion.ip:
                self.pending_same[conversion.type, "ip", _ip(conversion.ip)].append(conversion)
            if conversion.player_key:
                same = (conversion.type, "player_key", conversion.player_key)
                self.pending_same[same].append(conversion)
        sequence = len(self.pending)
        chains = conversion.type in CHAINED and conversion.affiliate_id
        if chains and conversion.status != Conversion.Status.REJECTED:
            for key in decide.identity_keys(conversion, event):
                self.pending_identities[key[:200]].append(
                    (conversion.occurred_at, sequence, conversion)
                )
        if conversion.affiliate_id is None and conversion.reason == Reason.ORGANIC:
            self.pending_organic[conversion.player_key].append(
                (conversion.occurred_at, conversion.pk)
            )

    def has_orphans(self, conversion: Conversion, event: PostbackEvent) -> bool:
        """Would ``single._adopt_orphans`` find organic events of this install's device?"""
        keys = decide.identity_keys(conversion, event)
        days = conversion.campaign.event_window_days if conversion.campaign else 180
        lo, hi = conversion.occurred_at, conversion.occurred_at + timedelta(days=days)
        if not set(keys) <= self.orphan_keys:
            stored = decide.orphans_of(conversion, keys).exists()
            return stored or self._pending_orphan(keys, lo, hi, conversion.pk)
        return any(
            lo <= at <= hi and pk != conversion.pk for key in keys for at, pk in self.orphans[key]
        ) or self._pending_orphan(keys, lo, hi, conversion.pk)

    def _pending_orphan(self, keys: list[str], lo: datetime, hi: datetime, pk: int) -> bool:
        return any(
            lo <= at <= hi and other != pk
            for key in keys
            for at, other in self.pending_organic.get(key, ())
        )

    # --- the answers ---------------------------------------------------------------------------

    def click_by_id(self, click_id: str) -> Click | None:
        return self.clicks.get(click_id[:64]) if click_id else None

    @staticmethod
    def _device_match(click: Click, event: PostbackEvent) -> bool:
        same_device = (event.gaid and click.gaid == event.gaid.lower()) or (
            event.idfa and click.idfa == event.idfa.upper()
        )
        app = event.app.pk
        return bool(same_device) and (
            click.campaign.ios_app_id == app or click.campaign.android_app_id == app
        )

    def click_by_device(self, event: PostbackEvent, app: App | None, model: str) -> Click | None:
        if id(event) not in self.device_events or app is None or app != event.app:
            return super().click_by_device(event, app, model)
        moment = event.occurred_at
        candidates = [
            c
            for c in self.device_clicks
            if moment - MAX_LOOKBACK <= c.created_at <= moment and self._device_match(c, event)
        ]
        return latest_inside(candidates, moment, model)

    def origin(self, keys: list[str], occurred_at: datetime) -> Conversion | None:
        if not set(keys) <= self.identity_keys:
            found = super().origin(keys, occurred_at)
            first = (found.occurred_at, 0, found) if found else None
        else:
            candidates = [
                row for key in keys for row in self.identities.get(key, ()) if row[0] <= occurred_at
            ]
            first = min(candidates, key=lambda row: row[:2], default=None)
        # The batch's own installs and registrations come after every stored one of their time.
        mine = [
            row
            for key in keys
            for row in self.pending_identities.get(key, ())
            if row[0] <= occurred_at
        ]
        earliest = min(mine, key=lambda row: row[:2], default=None)
        if earliest is not None and (first is None or earliest[0] < first[0]):
            return earliest[2]
        return first[2] if first else None

    def policy(self, campaign) -> FraudPolicy:
        if campaign is None or campaign.pk not in self.policy_known:
            return super().policy(campaign)
        return self.policies.get(campaign.pk, DEFAULT_POLICY)

    def _pending_installs(self, conversion: Conversion, since: datetime) -> int:
        pair = (conversion.affiliate_id, conversion.campaign_id)
        return sum(
            1
            for p in self.pending_installs.get(pair, ())
            if since <= p.occurred_at <= conversion.occurred_at and p.pk != conversion.pk
        )

    def installs_in_window(self, conversion: Conversion, since: datetime) -> int:
        key = (conversion.affiliate_id, conversion.campaign_id, since, conversion.occurred_at)
        counted = self.flood.get(key)
        if counted is not None and counted[2] is not None:
            stored = counted[2]
        else:
            stored = super().installs_in_window(conversion, since)
        return stored + self._pending_installs(conversion, since)

    def clicks_in_window(self, conversion: Conversion, since: datetime, cap: int) -> int:
        key = (conversion.affiliate_id, conversion.campaign_id, since, conversion.occurred_at)
        counted = self.flood.get(key)
        if counted is not None:
            few, few_cap, _, clicks, counted_to = counted
            # Each count is exact below its cap, and at its cap means "at least that many".
            if few < few_cap or cap <= few_cap:
                return min(few, cap)
            if clicks is not None and (clicks < counted_to or cap <= counted_to):
                return min(clicks, cap)
        return super().clicks_in_window(conversion, since, cap)

    def same_type_count(
        self, conversion: Conversion, since: datetime, *, field: str, value: str, cap: int
    ) -> int:
        if field == "ip":
            value, known = _ip(value), self.burst_ips
        else:
            known = self.burst_keys
        moment = conversion.occurred_at
        if since < self.burst_from or value not in known:
            stored = super().same_type_count(conversion, since, field=field, value=value, cap=cap)
        else:
            times = self.burst_times.get((conversion.type, field, value), ())
            stored = sum(1 for at in times if since <= at <= moment)
        mine = sum(
            1
            for p in self.pending_same.get((conversion.type, field, value), ())
            if since <= p.occurred_at <= moment and p.pk != conversion.pk
        )
        return min(stored + mine, cap)
