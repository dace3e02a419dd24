from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from . import selectors, services
from .models import Click, Postback, PostbackEvent, PostbackSource


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence: managers read it, nobody edits it."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Click)
class ClickAdmin(ReadOnlyAdmin):
    list_display = (
        "click_id",
        "created_at",
        "affiliate",
        "campaign",
        "platform",
        "country",
        "sub1",
        "ip",
    )
    list_filter = ("platform", "campaign__brand", "campaign", "country")
    search_fields = ("=click_id", "=gaid", "=idfa", "=ip", "sub1", "=affiliate__id")
    list_select_related = ("affiliate", "campaign")
    date_hierarchy = "created_at"
    show_full_result_count = False  # COUNT(*) over millions of clicks on every page is not free


@admin.register(PostbackSource)
class PostbackSourceAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "app", "brand", "is_active", "endpoint", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "=token")
    autocomplete_fields = ("app", "brand")
    list_select_related = ("app", "brand")
    readonly_fields = ("token", "previous_token", "previous_token_valid_until", "endpoint")
    actions = ("rotate_token",)

    @admin.display(description="Postback URL path")
    def endpoint(self, obj: PostbackSource) -> str:
        return obj.path if obj.pk else "-"

    @admin.action(description="Rotate token (the old one keeps working for 7 days)")
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[PostbackSource]) -> None:
        for source in queryset:
            services.source_rotate_token(source=source, actor=request.user)
        self.message_user(request, f"Rotated {queryset.count()} token(s).", messages.SUCCESS)


@admin.register(Postback)
class PostbackAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "kind", "source", "status", "signature", "short_reason")
    list_filter = ("status", "kind", "signature", "source")
    search_fields = ("=id", "=dedup_key", "query")
    list_select_related = ("source",)
    date_hierarchy = "received_at"
    show_full_result_count = False

    @admin.display(description="Reason")
    def short_reason(self, obj: Postback) -> str:
        return obj.reason[:120]

    def get_urls(self):
        return [
            path(
                "health/",
                self.admin_site.admin_view(self.health_view),
                name="attribution_postback_health",
            ),
            *super().get_urls(),
        ]

    def health_view(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Ingestion health",
            "health": selectors.ingestion_health(now=timezone.now()),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/attribution/ingestion_health.html", context)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        extra_context = {
            **(extra_context or {}),
            "health_link": format_html(
                '<a href="{}">Ingestion health</a>', reverse("admin:attribution_postback_health")
            ),
        }
        return super().changelist_view(request, extra_context)


@admin.register(PostbackEvent)
class PostbackEventAdmin(ReadOnlyAdmin):
    list_display = (
        "postback",
        "created_at",
        "source",
        "kind",
        "event_name",
        "conversion_type",
        "click_id",
        "revenue",
        "currency",
        "blocked_reason",
    )
    list_filter = ("kind", "conversion_type", "source", "platform")
    search_fields = ("=click_id", "=mmp_device_id", "=gaid", "=idfa", "=player_id", "=txid")
    list_select_related = ("source", "postback")
    date_hierarchy = "created_at"
    show_full_result_count = False
