from django import forms
from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse

from attribution.rollups import reports
from portal.lib.admin import ReadOnlyAdmin, SafeAutocomplete

from . import notify, offers, profile, selectors, services
from .filters import StatsFilter
from .models import (
    Affiliate,
    AffiliateNote,
    Announcement,
    App,
    AuditEvent,
    Brand,
    Campaign,
    CampaignAccess,
    Creative,
    NoticeKind,
    PaymentDetailsChange,
    TermsAcceptance,
    TermsVersion,
    TrackingLink,
)
from .views import VIEW_AS


class TrackingLinkInline(SafeAutocomplete, admin.TabularInline):
    model = TrackingLink
    extra = 0
    fields = ("code", "campaign", "name", "sub1", "is_active", "created_at")
    readonly_fields = ("code", "created_at")
    autocomplete_fields = ("campaign",)
    show_change_link = True


class AffiliateNoteInline(admin.TabularInline):
    """Notes are added, never edited: who wrote what, when."""

    model = AffiliateNote
    extra = 1
    fields = ("text", "author", "created_at")
    readonly_fields = ("author", "created_at")

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Affiliate)
class AffiliateAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = ("id", "name", "user", "status", "parent", "manager", "currency", "created_at")
    list_filter = ("status", "currency", "manager")
    search_fields = ("name", "user__username", "user__email", "=id")
    autocomplete_fields = ("user", "parent", "manager")
    list_select_related = ("user", "parent", "manager")
    date_hierarchy = "created_at"
    actions = ("approve", "suspend")
    inlines = (AffiliateNoteInline, TrackingLinkInline)
    change_form_template = "admin/affiliates/affiliate/change_form.html"

    class Media:
        css = {"all": ("console.css",)}

    def save_formset(self, request, form, formset, change) -> None:
        if formset.model is AffiliateNote:
            for note in formset.save(commit=False):
                note.author = request.user
                note.save()
            return
        super().save_formset(request, form, formset, change)

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ):
        affiliate = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if affiliate is not None and request.method == "GET":
            stats = StatsFilter(
                {"period": "last30", **request.GET.dict()},
                campaigns=selectors.campaigns_of(affiliate),
            )
            period, error = stats.chosen_period(time_zone=affiliate.time_zone, default="last30")
            if error:
                self.message_user(request, error, messages.ERROR)
            extra_context["view360"] = selectors.affiliate_360(affiliate=affiliate, period=period)
            extra_context["stats"] = stats
            extra_context["metrics"] = reports.METRICS
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:pk>/view-as/",
                self.admin_site.admin_view(self.view_as),
                name="affiliates_affiliate_view_as",
            ),
            *super().get_urls(),
        ]

    def view_as(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Open the affiliate's dashboard read-only, as the affiliate sees it; audited."""
        affiliate = self.get_object(request, str(pk))
        if affiliate is None or not self.has_view_permission(request, affiliate):
            raise Http404("no such affiliate")
        if request.method != "POST":
            return HttpResponseRedirect(
                reverse("admin:affiliates_affiliate_change", args=[affiliate.pk])
            )
        request.session[VIEW_AS] = affiliate.pk
        services.view_as_record(manager=request.user, affiliate=affiliate, started=True)
        return HttpResponseRedirect(reverse("affiliate-dashboard"))

    @admin.action(description="Approve selected affiliates")
    def approve(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        changed = services.affiliates_set_status(
            affiliates=queryset, status=Affiliate.Status.ACTIVE, actor=request.user
        )
        self.message_user(request, f"{changed} affiliate(s) approved.", messages.SUCCESS)

    @admin.action(description="Suspend selected affiliates")
    def suspend(self, request: HttpRequest, queryset: QuerySet[Affiliate]) -> None:
        changed = services.affiliates_set_status(
            affiliates=queryset, status=Affiliate.Status.SUSPENDED, actor=request.user
        )
        self.message_user(request, f"{changed} affiliate(s) suspended.", messages.WARNING)


@admin.register(Announcement)
class AnnouncementAdmin(SafeAutocomplete, admin.ModelAdmin):
    """Post a message to affiliates' bells and inboxes: all, or a segment. Sent when saved."""

    list_display = ("title", "segment", "recipients", "author", "created_at")
    fields = ("title", "body", "segment", "campaign", "currency")
    autocomplete_fields = ("campaign",)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        form.clean = _announcement_clean
        return form

    def save_model(self, request, obj, form, change) -> None:
        obj.author = request.user
        super().save_model(request, obj, form, change)
        sent = notify.announcement_send(announcement=obj)
        self.message_user(request, f"Sent to {sent} affiliate(s).", messages.SUCCESS)


def _announcement_clean(form) -> dict:
    data = form.cleaned_data
    segment = data.get("segment")
    if segment == Announcement.Segment.CAMPAIGN and not data.get("campaign"):
        form.add_error("campaign", "Pick the campaign whose affiliates get it.")
    if segment == Announcement.Segment.CURRENCY and len(data.get("currency", "")) != 3:
        form.add_error("currency", "A three-letter currency, e.g. EUR.")
    return data


@admin.register(Brand)
class BrandAdmin(admin.ModelAdmin):
    list_display = ("name", "website", "currency")
    search_fields = ("name",)


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ("name", "brand", "platform", "bundle_id", "app_store_id", "mmp")
    list_filter = ("platform", "mmp", "brand")
    search_fields = ("name", "bundle_id", "app_store_id")
    list_select_related = ("brand",)


class CreativeInline(admin.TabularInline):
    model = Creative
    extra = 0
    fields = ("kind", "name", "file", "text", "preview_url")


class AccessDecisionForm(forms.ModelForm):
    """A manager's answer to an access request: approve, or refuse with a reason. Adding one
    lets an affiliate into a private or approval-only campaign."""

    decision = forms.ChoiceField(
        choices=[("", "—"), ("approve", "Approve"), ("refuse", "Refuse or revoke")],
        required=False,
    )

    class Meta:
        model = CampaignAccess
        fields = ("affiliate", "campaign", "reason")

    def clean(self) -> dict:
        cleaned = super().clean()
        if cleaned.get("decision") == "refuse" and not (cleaned.get("reason") or "").strip():
            self.add_error("reason", "Say why: the affiliate reads the reason.")
        campaign = cleaned.get("campaign")
        if self.instance.pk is None and campaign and campaign.visibility == "public":
            self.add_error("campaign", "A public campaign is open to every affiliate already.")
        return cleaned


@admin.register(CampaignAccess)
class CampaignAccessAdmin(SafeAutocomplete, admin.ModelAdmin):
    """Access requests to approval-only campaigns, and who was let into private ones."""

    form = AccessDecisionForm
    list_display = ("affiliate", "campaign", "status", "message", "requested_at", "decided_by")
    list_filter = ("status", "campaign")
    search_fields = ("affiliate__name", "campaign__name", "=affiliate__id")
    autocomplete_fields = ("affiliate", "campaign")
    list_select_related = ("affiliate", "campaign", "decided_by")
    actions = ("approve",)
    date_hierarchy = "requested_at"

    def get_fields(self, request: HttpRequest, obj: CampaignAccess | None = None):
        if obj is None:
            return ("affiliate", "campaign")
        return ("affiliate", "campaign", "status", "message", "decision", "reason", "decided_by")

    def get_readonly_fields(self, request: HttpRequest, obj: CampaignAccess | None = None):
        if obj is None:
            return ()
        return ("affiliate", "campaign", "status", "message", "decided_by")

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            granted = offers.access_grant(
                affiliate=obj.affiliate, campaign=obj.campaign, actor=request.user
            )
            obj.pk = granted.pk
            return
        decision = form.cleaned_data.get("decision")
        if decision:
            offers.access_decide(
                access=obj,
                approve=decision == "approve",
                reason=form.cleaned_data.get("reason", ""),
                actor=request.user,
            )

    @admin.action(description="Approve the selected requests")
    def approve(self, request: HttpRequest, queryset: QuerySet[CampaignAccess]) -> None:
        done = 0
        for access in queryset.exclude(status=CampaignAccess.Status.APPROVED):
            offers.access_decide(access=access, approve=True, actor=request.user)
            done += 1
        self.message_user(request, f"{done} approved.", messages.SUCCESS)


@admin.register(Campaign)
class CampaignAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = ("name", "brand", "status", "visibility", "click_lookback_days", "link_count")
    inlines = (CreativeInline,)
    list_filter = ("status", "visibility", "brand")
    search_fields = ("name", "brand__name", "=id")
    autocomplete_fields = ("brand", "ios_app", "android_app")
    list_select_related = ("brand",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return super().get_queryset(request).annotate(link_count=Count("links"))

    def save_model(self, request, obj, form, change) -> None:
        was_open = (
            change
            and Campaign.objects.filter(
                pk=obj.pk, status=Campaign.Status.ACTIVE, visibility=Campaign.Visibility.PUBLIC
            ).exists()
        )
        super().save_model(request, obj, form, change)
        is_open = (
            obj.status == Campaign.Status.ACTIVE and obj.visibility == Campaign.Visibility.PUBLIC
        )
        if is_open and not was_open:
            notify.notify(
                users=notify.segment_users(Announcement(segment=Announcement.Segment.ALL)),
                kind=NoticeKind.NEW_OFFER,
                title=f"New offer: {obj.name}",
                body=f"{obj.brand} opened {obj.name} to every affiliate. Create a link for it.",
                url=reverse("affiliate-offers"),
            )

    @admin.display(ordering="link_count", description="Links")
    def link_count(self, obj: Campaign) -> int:
        return obj.link_count


@admin.register(TrackingLink)
class TrackingLinkAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = ("code", "affiliate", "campaign", "name", "sub1", "is_active", "created_at")
    list_filter = ("is_active", "campaign__brand", "campaign")
    search_fields = ("=code", "name", "affiliate__name", "campaign__name")
    autocomplete_fields = ("affiliate", "campaign")
    list_select_related = ("affiliate", "campaign")
    readonly_fields = ("code", "created_at")
    date_hierarchy = "created_at"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ("at", "content_type", "object_id", "field", "old", "new", "actor")
    list_filter = ("content_type", "field")
    search_fields = ("=object_id", "actor__username")
    list_select_related = ("content_type", "actor")
    date_hierarchy = "at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False


@admin.register(TermsVersion)
class TermsVersionAdmin(admin.ModelAdmin):
    """Publish a new version to have every affiliate accept it at their next visit; a version
    someone accepted is never edited."""

    list_display = ("version", "published_at", "accepted_by")
    date_hierarchy = "published_at"

    def get_queryset(self, request: HttpRequest) -> QuerySet[TermsVersion]:
        return super().get_queryset(request).annotate(accepted=Count("acceptances"))

    def has_change_permission(self, request: HttpRequest, obj: TermsVersion | None = None):
        if obj is not None and obj.acceptances.exists():
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: TermsVersion | None = None):
        return False

    @admin.display(ordering="accepted", description="Accepted by")
    def accepted_by(self, obj: TermsVersion) -> int:
        return obj.accepted


@admin.register(TermsAcceptance)
class TermsAcceptanceAdmin(ReadOnlyAdmin):
    list_display = ("user", "terms", "accepted_at", "ip")
    list_filter = ("terms",)
    search_fields = ("user__username",)
    list_select_related = ("user", "terms")


@admin.register(PaymentDetailsChange)
class PaymentDetailsChangeAdmin(admin.ModelAdmin):
    """Affiliates' new payment details: confirm them to release the held payouts."""

    list_display = ("affiliate", "method", "details", "status", "created_at", "email_confirmed_at")
    list_filter = ("status", "method")
    search_fields = ("affiliate__name", "=affiliate__id", "iban", "paypal_email", "wallet")
    list_select_related = ("affiliate",)
    actions = ("confirm",)
    readonly_fields = [
        f.name for f in PaymentDetailsChange._meta.fields if f.name not in ("id", "token")
    ]
    exclude = ("token",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Details")
    def details(self, obj: PaymentDetailsChange) -> str:
        return obj.summary()

    @admin.action(description="Confirm the selected changes (their payouts are released)")
    def confirm(self, request: HttpRequest, queryset: QuerySet[PaymentDetailsChange]) -> None:
        done = 0
        for change in queryset.filter(status=PaymentDetailsChange.Status.AWAITING_MANAGER):
            profile.payment_change_approve(change=change, actor=request.user)
            done += 1
        self.message_user(request, f"{done} confirmed.", messages.SUCCESS)
