"""Writing a checked plan in the import's transaction: the program (affiliates, brands, campaigns,
links); clicks and conversions go through attribution's ``ingestion.history``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.contenttypes.models import ContentType
from django.utils import timezone
from tqdm import tqdm

from affiliates import offers
from affiliates.importing.cells import SUBS, chunks
from affiliates.importing.report import ImportReport
from affiliates.importing.rows import ConversionRow, Plan
from affiliates.models import (
    Affiliate,
    AuditEvent,
    Brand,
    Campaign,
    LegacyLink,
    TrackingLink,
)
from affiliates.services import Actor
from attribution.ingestion import history


class Writer:
    """Writes a checked plan; runs inside the import's transaction."""

    def __init__(self, plan: Plan, report: ImportReport, progress: bool | None, actor: Actor):
        self.plan = plan
        self.report = report
        self.disable = None if progress is None else not progress
        self.actor = actor if actor is not None and actor.is_authenticated else None
        self.now = timezone.now()
        self.affiliate_ids: dict[str, int] = {}  # username -> pk
        self.campaign_ids: dict[tuple[str, str], int] = {}
        self.link_ids: dict[str, tuple[int, int, int]] = {}  # code -> (pk, affiliate, campaign)
        self.audits: list[AuditEvent] = []

    def bar(self, total: int, name: str) -> tqdm:
        return tqdm(total=total, desc=f"writing {name}", unit="row", disable=self.disable)

    def audit(self, obj: Any, field_name: str, old: str, new: str) -> None:
        self.audits.append(
            AuditEvent(
                content_type=ContentType.objects.get_for_model(obj),
                object_id=str(obj.pk),
                field=field_name,
                old=str(old)[:255],
                new=str(new)[:255],
                actor=self.actor,
                note=f"import from {self.report.directory}"[:500],
            )
        )

    def run(self) -> None:
        self.affiliates()
        self.campaigns()
        self.links()
        self.clicks()
        self.conversions()
        AuditEvent.objects.bulk_create(self.audits, batch_size=1000)

    # affiliates -------------------------------------------------------------------------------

    def affiliates(self) -> None:
        rows = [r for r in self.plan.affiliates.values() if r.action != "refused"]
        if not rows:
            return
        user_model = get_user_model()
        with self.bar(len(rows), "affiliates") as bar:
            new = [r for r in rows if r.existing is None]
            user_model.objects.bulk_create(
                [
                    user_model(
                        username=r.username,
                        email=r.email,
                        password=make_password(None),
                        date_joined=r.created_at or self.now,
                    )
                    for r in new
                ],
                batch_size=500,
            )
            user_ids = self._ids(user_model.objects, "username", [r.username for r in new])
            made = Affiliate.objects.bulk_create(
                [
                    Affiliate(
                        user_id=user_ids[r.username],
                        name=r.name,
                        status=r.status,
                        time_zone=r.time_zone,
                        currency=r.currency,
                    )
                    for r in new
                ],
                batch_size=500,
            )
            bar.update(len(new))
            self.affiliate_ids = dict(
                self._pairs(Affiliate.objects, "user__username", [r.username for r in rows])
            )
            dated = []
            for affiliate, row in zip(made, new, strict=True):
                affiliate.pk = self.affiliate_ids[row.username]
                if row.created_at:
                    affiliate.created_at = row.created_at
                    dated.append(affiliate)
                self.audit(affiliate, "status", "", row.status)
            Affiliate.objects.bulk_update(dated, ["created_at"], batch_size=500)
            changed, users = [], []
            for row in rows:
                if row.action != "updated":
                    continue
                affiliate = row.existing
                if affiliate.status != row.status:
                    self.audit(affiliate, "status", affiliate.status, row.status)
                affiliate.name, affiliate.status = row.name, row.status
                affiliate.time_zone, affiliate.currency = row.time_zone, row.currency
                changed.append(affiliate)
                if affiliate.user.email != row.email:
                    affiliate.user.email = row.email
                    users.append(affiliate.user)
                bar.update(1)
            Affiliate.objects.bulk_update(
                changed, ["name", "status", "time_zone", "currency"], batch_size=500
            )
            user_model.objects.bulk_update(users, ["email"], batch_size=500)
            parents = []
            for row in rows:
                parent = self.plan.affiliates.get(row.parent_external_id)
                parent_id = self.affiliate_ids[parent.username] if parent else None
                if row.existing is None and parent_id is None:
                    continue
                if row.existing is not None and row.existing.parent_id == parent_id:
                    continue
                parents.append(Affiliate(pk=self.affiliate_ids[row.username], parent_id=parent_id))
            Affiliate.objects.bulk_update(parents, ["parent"], batch_size=500)
            bar.update(len(rows) - bar.n)

    @staticmethod
    def _pairs(manager: Any, key: str, values: list) -> Iterator[tuple[Any, int]]:
        for batch in chunks(values):
            yield from manager.filter(**{f"{key}__in": batch}).values_list(key, "pk")

    def _ids(self, manager: Any, key: str, values: list) -> dict[Any, int]:
        return dict(self._pairs(manager, key, values))

    # campaigns --------------------------------------------------------------------------------

    def campaigns(self) -> None:
        rows = [r for r in self.plan.campaigns.values() if r.action != "refused"]
        if not rows:
            return
        brands = {}
        for name, brand in self.plan.brands.items():
            brands[name] = brand or Brand.objects.create(name=name)
        with self.bar(len(rows), "campaigns") as bar:
            for row in rows:
                if row.existing is None:
                    campaign = Campaign.objects.create(
                        brand=brands[row.brand], name=row.name, **row.fields
                    )
                    self.audit(campaign, "status", "", campaign.status)
                else:
                    campaign = row.existing
                    if row.action == "updated":
                        if campaign.status != row.fields["status"]:
                            self.audit(campaign, "status", campaign.status, row.fields["status"])
                        for name, value in row.fields.items():
                            setattr(campaign, name, value)
                        campaign.save(update_fields=list(row.fields))
                self.campaign_ids[row.key] = campaign.pk
                bar.update(1)

    # links ------------------------------------------------------------------------------------

    def links(self) -> None:
        rows = [r for r in self.plan.links.values() if r.action != "refused"]
        with self.bar(len(rows), "links") as bar:
            new, changed = [], []
            for row in rows:
                if row.existing is None:
                    affiliate = self.plan.affiliates[row.affiliate_external_id].username
                    campaign = self.plan.campaigns[row.campaign_external_id].key
                    new.append(
                        TrackingLink(
                            affiliate_id=self.affiliate_ids[affiliate],
                            campaign_id=self.campaign_ids[campaign],
                            code=row.code,
                            **dict(zip(SUBS, row.subs, strict=True)),
                        )
                    )
                elif row.action == "updated":
                    for name, value in zip(SUBS, row.subs, strict=True):
                        setattr(row.existing, name, value)
                    changed.append(row.existing)
            for batch in chunks(new, 1000):
                TrackingLink.objects.bulk_create(batch)
                bar.update(len(batch))
            TrackingLink.objects.bulk_update(changed, list(SUBS), batch_size=500)
            bar.update(len(changed))
            codes = [r.code for r in rows] + list(self.plan.known_links)
            for batch in chunks(codes):
                for code, *ids in TrackingLink.objects.filter(code__in=batch).values_list(
                    "code", "pk", "affiliate_id", "campaign_id"
                ):
                    self.link_ids[code] = tuple(ids)
            # Links a program brings with it keep their traffic on gated campaigns (bulk_create
            # sends no post_save for offers' receiver to do it).
            offers.access_grant_for_links(sorted({ids[2] for ids in self.link_ids.values()}))
            LegacyLink.objects.bulk_create(
                [
                    LegacyLink(path=r.legacy[0], key=r.legacy[1], link_id=self.link_ids[r.code][0])
                    for r in rows
                    if r.legacy_action == "created"
                ],
                batch_size=1000,
            )
            bar.update(len(rows) - bar.n)

    # clicks and conversions: attribution's history writer --------------------------------

    def clicks(self) -> None:
        if not self.plan.clicks:
            return
        with self.bar(len(self.plan.clicks), "clicks") as bar:
            history.clicks_import(self._click_values(), progress=bar.update)

    def _click_values(self) -> Iterator[tuple]:
        """Each new click's values in ``history.CLICK_COLUMNS`` order."""
        for click_id, code, created_at, ip, ua, platform, country, *rest in self.plan.clicks:
            link_id, affiliate_id, campaign_id = self.link_ids[code]
            yield (
                click_id,
                link_id,
                affiliate_id,
                campaign_id,
                created_at,
                ip,
                ua,
                platform,
                country,
                *rest,  # sub1..sub5, gaid, idfa
                "",  # referrer: not in the export
            )

    def conversions(self) -> None:
        rows = [r for r in self.plan.conversions.values() if r.action in ("created", "updated")]
        if not rows:
            return
        with self.bar(len(rows), "conversions") as bar:
            changed = history.conversions_import(
                [self._historic(r) for r in rows], now=self.now, progress=bar.update
            )
        for conversion, old, new in changed:
            self.audit(conversion, "import", old, new)

    def _historic(self, row: ConversionRow) -> history.HistoricConversion:
        affiliate = (
            self.plan.affiliates[row.affiliate_external_id] if row.affiliate_external_id else None
        )
        campaign = (
            self.plan.campaigns[row.campaign_external_id] if row.campaign_external_id else None
        )
        return history.HistoricConversion(
            external_id=row.external_id,
            line=row.line,
            raw=row.raw,
            type=row.type,
            status=row.status,
            occurred_at=row.occurred_at,
            click_id=row.click_id,
            affiliate_id=self.affiliate_ids[affiliate.username] if affiliate else None,
            campaign_id=self.campaign_ids[campaign.key] if campaign else None,
            revenue=row.revenue,
            currency=row.currency,
            player_id=row.player_id,
            platform=row.platform,
            country=row.country,
            existing=row.existing,
        )
