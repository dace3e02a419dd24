from affiliates.models import Affiliate, Campaign, TrackingLink


def link_for_redirect(*, code: str) -> TrackingLink | None:
    """The link behind /c/<code> if it may send traffic now: link, campaign and affiliate active."""
    return (
        TrackingLink.objects.select_related("campaign", "affiliate")
        .only(
            "id",
            "code",
            "is_active",
            "deep_link",
            *(f"sub{i}" for i in range(1, 6)),
            "affiliate__id",
            "affiliate__status",
            "campaign__id",
            "campaign__name",
            "campaign__status",
            "campaign__web_url",
            "campaign__ios_url",
            "campaign__android_url",
            "campaign__click_lookback_days",
        )
        .filter(
            code=code,
            is_active=True,
            affiliate__status=Affiliate.Status.ACTIVE,
            campaign__status=Campaign.Status.ACTIVE,
        )
        .first()
    )
