"""What attribution reads: clicks, earlier installs and registrations, fraud policies and counts.

``Lookups`` asks the database, one question at a time; it is what a single postback (and a
reattribution) uses. The batch worker (``crediting.batch_lookups``) answers the same questions for a
whole batch from a few prefetching queries plus what the batch itself has decided so far, and
falls back to these methods for anything it did not prefetch. Both must give the same answers.
"""

from datetime import datetime, timedelta

from django.db.models import Q

from affiliates.models import App, Campaign
from attribution.models import (
    Click,
    Conversion,
    ConversionType,
    FraudPolicy,
    Identity,
    PostbackEvent,
    Reason,
)

# Device-id matching never looks back further than this, whatever a campaign says.
MAX_LOOKBACK = timedelta(days=30)
DEVICE_CANDIDATES = 50
DEFAULT_POLICY = FraudPolicy()
DUPLICATE_REASONS = (Reason.DUPLICATE_CLAIM, Reason.DUPLICATE_FTD)


def campaigns_of_app(app: App | None) -> Q:
    if app is None:
        return Q(pk__in=[])
    return Q(campaign__ios_app=app) | Q(campaign__android_app=app)


def latest_inside(candidates: list[Click], occurred_at: datetime, model: str) -> Click | None:
    """Of a device's clicks (newest first), the one a campaign's model credits inside its window."""
    inside = [
        c
        for c in candidates[:DEVICE_CANDIDATES]
        if occurred_at - c.created_at <= timedelta(days=c.campaign.click_lookback_days)
    ]
    if not inside:
        return None
    return inside[-1] if model == Campaign.AttributionModel.FIRST_CLICK else inside[0]


class Lookups:
    """The database, one query a question."""

    def click_by_id(self, click_id: str) -> Click | None:
        if not click_id:
            return None
        return (
            Click.objects.select_related("affiliate", "campaign")
            .filter(click_id=click_id[:64])
            .first()
        )

    def click_by_device(self, event: PostbackEvent, app: App | None, model: str) -> Click | None:
        """The latest (or, for first-click campaigns, earliest) click of this device for the app."""
        if app is None or not (event.gaid or event.idfa) or event.occurred_at is None:
            return None
        device = Q()
        if event.gaid:
            device |= Q(gaid=event.gaid.lower())
        if event.idfa:
            device |= Q(idfa=event.idfa.upper())
        candidates = list(
            Click.objects.select_related("affiliate", "campaign")
            .filter(device, campaigns_of_app(app))
            .filter(
                created_at__lte=event.occurred_at,
                created_at__gte=event.occurred_at - MAX_LOOKBACK,
            )
            .order_by("-created_at")[:DEVICE_CANDIDATES]
        )
        return latest_inside(candidates, event.occurred_at, model)

    def origin(self, keys: list[str], occurred_at: datetime) -> Conversion | None:
        """The first install or registration known by any of these device or player keys."""
        identity = (
            Identity.objects.select_related(
                "conversion__affiliate", "conversion__campaign", "conversion__click"
            )
            .filter(
                key__in=keys,
                occurred_at__lte=occurred_at,
                conversion__is_winner=True,
                conversion__affiliate__isnull=False,
            )
            .exclude(conversion__status=Conversion.Status.REJECTED)
            .order_by("occurred_at", "pk")
            .first()
        )
        return identity.conversion if identity else None

    def policy(self, campaign: Campaign | None) -> FraudPolicy:
        if campaign is None:
            return DEFAULT_POLICY
        try:
            return campaign.fraud_policy
        except FraudPolicy.DoesNotExist:
            return DEFAULT_POLICY

    def installs_in_window(self, conversion: Conversion, since: datetime) -> int:
        """The affiliate's winning installs on the campaign in [since, the conversion's time]."""
        return (
            Conversion.objects.filter(
                affiliate_id=conversion.affiliate_id,
                campaign_id=conversion.campaign_id,
                type=ConversionType.INSTALL,
                occurred_at__gte=since,
                occurred_at__lte=conversion.occurred_at,
                is_winner=True,
            )
            .exclude(pk=conversion.pk)
            .count()
        )

    def clicks_in_window(self, conversion: Conversion, since: datetime, cap: int) -> int:
        """The affiliate's clicks on the campaign in the window, counted no further than ``cap``."""
        return Click.objects.filter(
            affiliate_id=conversion.affiliate_id,
            campaign_id=conversion.campaign_id,
            created_at__gte=since,
            created_at__lte=conversion.occurred_at,
        )[:cap].count()

    def same_type_count(
        self, conversion: Conversion, since: datetime, *, field: str, value: str, cap: int
    ) -> int:
        """Conversions of this type from one IP or device in the window (duplicates aside)."""
        return (
            Conversion.objects.filter(
                type=conversion.type,
                occurred_at__gte=since,
                occurred_at__lte=conversion.occurred_at,
                **{field: value},
            )
            .exclude(reason__in=DUPLICATE_REASONS)
            .exclude(pk=conversion.pk)[:cap]
            .count()
        )


DATABASE = Lookups()
