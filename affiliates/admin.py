from django.contrib import admin, messages
from django.db.models import Count, QuerySet
from django.http import HttpRequest

from . import services
from .models import Affiliate, App, AuditEvent, Brand, Campaign, TrackingLink


class TrackingLinkInline(admin.TabularInline):
    model = TrackingLink
    extra = 0
    fields = ("code", "campaign", "name", "sub1", "is_active", "created_at")
    readonly_fields = ("code", "created_at")
    autocomplete_fields = ("campaign",)
    show_change_link = True


@admin.register(Affiliate)
class AffiliateAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "user", "status", "parent", "manager", "currency", "created_at")
    list_filter = ("status", "currency", "manager")
    search_fields = ("name", "user__username", "user__email", "=id")
    autocomplete_fields = ("user", "parent", "manager")
    list_select_related = ("user", "parent", "manager")
    date_hierarchy = "created_at"
    actions = ("approve", "suspend")
    inlines = (TrackingLinkInline,)

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


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("name", "brand", "status", "visibility", "click_lookback_days", "link_count")
    list_filter = ("status", "visibility", "brand")
    search_fields = ("name", "brand__name", "=id")
    autocomplete_fields = ("brand", "ios_app", "android_app")
    list_select_related = ("brand",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return super().get_queryset(request).annotate(link_count=Count("links"))

    @admin.display(ordering="link_count", description="Links")
    def link_count(self, obj: Campaign) -> int:
        return obj.link_count


@admin.register(TrackingLink)
class TrackingLinkAdmin(admin.ModelAdmin):
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
