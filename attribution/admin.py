from django.contrib import admin
from django.http import HttpRequest

from .models import Click


@admin.register(Click)
class ClickAdmin(admin.ModelAdmin):
    """Clicks are evidence: managers read them, nobody edits them."""

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
    readonly_fields = [f.name for f in Click._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Click | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Click | None = None) -> bool:
        return False
