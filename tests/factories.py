import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from affiliates.models import Affiliate, App, Brand, Campaign, TrackingLink
from attribution.models import Click, Conversion, Postback, PostbackEvent, PostbackSource


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class AffiliateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Affiliate

    user = factory.SubFactory(UserFactory)
    name = factory.LazyAttribute(lambda a: a.user.username.title())
    status = Affiliate.Status.ACTIVE


class BrandFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Brand
        django_get_or_create = ("name",)

    name = "Lucky Spins"


class AppFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = App

    brand = factory.SubFactory(BrandFactory)
    name = "Lucky Spins Casino"
    platform = "ios"
    bundle_id = factory.Sequence(lambda n: f"com.luckyspins.app{n}")
    app_store_id = "1234567890"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    brand = factory.SubFactory(BrandFactory)
    name = factory.Sequence(lambda n: f"Campaign {n}")
    web_url = (
        "https://casino.example/welcome?cid={click_id}&a={affiliate_id}&c={campaign_id}&s1={sub1}"
    )


class TrackingLinkFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TrackingLink

    affiliate = factory.SubFactory(AffiliateFactory)
    campaign = factory.SubFactory(CampaignFactory)


class ClickFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Click

    click_id = factory.Sequence(lambda n: f"click-{n:08d}")
    link = factory.LazyAttribute(
        lambda c: TrackingLink.objects.get_or_create(affiliate=c.affiliate, campaign=c.campaign)[0]
    )
    affiliate = factory.SubFactory(AffiliateFactory)
    campaign = factory.SubFactory(CampaignFactory)
    created_at = factory.LazyFunction(timezone.now)
    platform = "web"


class PostbackSourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PostbackSource

    kind = "appsflyer"
    name = factory.LazyAttribute(lambda s: f"{s.kind} source")


class PostbackFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Postback

    kind = "s2s"
    method = "GET"
    received_at = factory.LazyFunction(timezone.now)
    dedup_key = factory.Sequence(lambda n: f"s2s:tx-{n}")
    status = Postback.Status.PROCESSED


class PostbackEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PostbackEvent

    postback = factory.SubFactory(PostbackFactory)
    kind = "event"
    conversion_type = "ftd"


class ConversionFactory(factory.django.DjangoModelFactory):
    """A conversion as the attribution step leaves it (its ledger not yet synced)."""

    class Meta:
        model = Conversion

    type = "ftd"
    channel = "web"
    platform = "web"
    method = "click_id"
    occurred_at = factory.LazyFunction(timezone.now)
    status = Conversion.Status.APPROVED
    reason = "ok"
    claim_key = factory.Sequence(lambda n: f"test-claim-{n}")
    event = factory.SubFactory(PostbackEventFactory)
    currency = "EUR"
