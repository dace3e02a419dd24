from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db.models import QuerySet
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from attribution.crediting import evidence
from attribution.ingestion import monitor, tokens
from attribution.models import (
    Click,
    Conversion,
    DailyRollup,
    FraudPolicy,
    OutboundDelivery,
    OutboundEndpoint,
    Postback,
    PostbackEvent,
    PostbackSource,
    SkanMapping,
    SkippedClicks,
)
from attribution.outbound import schedule
from attribution.parsing import senders
from attribution.processing import amend, trial, work
from portal.lib.admin import ReadOnlyAdmin, SafeAutocomplete


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


@admin.register(SkippedClicks)
class SkippedClicksAdmin(ReadOnlyAdmin):
    """What /c/ redirected without recording a click: HEAD requests, bots and link previewers."""

    list_display = ("day", "link", "affiliate", "reason", "count")
    list_filter = ("reason", "day")
    search_fields = ("=link__code", "=link__affiliate__id")
    list_select_related = ("link__affiliate",)
    date_hierarchy = "day"

    @admin.display(description="Affiliate")
    def affiliate(self, obj: SkippedClicks) -> object:
        return obj.link.affiliate


class TryPostbackForm(forms.Form):
    pasted = forms.CharField(
        label="Postback URL, query string or JSON body",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 100}),
    )
    body = forms.CharField(
        label="POST body (optional, with a URL above)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 100}),
    )


@admin.register(PostbackSource)
class PostbackSourceAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = ("name", "kind", "app", "brand", "is_active", "endpoint", "created_at")
    list_filter = ("kind", "is_active")
    search_fields = ("name", "=token")
    autocomplete_fields = ("app", "brand")
    list_select_related = ("app", "brand")
    readonly_fields = ("token", "previous_token", "previous_token_valid_until", "endpoint")
    actions = ("rotate_token",)
    change_form_template = "admin/attribution/postbacksource/change_form.html"

    @admin.display(description="Postback URL path")
    def endpoint(self, obj: PostbackSource) -> str:
        return obj.path if obj.pk else "-"

    def get_urls(self):
        return [
            path(
                "<int:pk>/try/",
                self.admin_site.admin_view(self.try_view),
                name="attribution_postbacksource_try",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ):
        source = self.get_object(request, object_id)
        templates = []
        if source is not None:
            templates = senders.templates_for(source.kind, request.build_absolute_uri(source.path))
        extra_context = {**(extra_context or {}), "setup_templates": templates}
        return super().change_view(request, object_id, form_url, extra_context)

    def try_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Paste a postback, see how it would be read and credited; nothing is stored."""
        source = self.get_object(request, str(pk))
        if source is None or not self.has_view_permission(request, source):
            raise Http404("no such postback source")
        form = TryPostbackForm(request.POST or None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = trial.postback_try(
                source=source, pasted=form.cleaned_data["pasted"], body=form.cleaned_data["body"]
            )
        context = {
            **self.admin_site.each_context(request),
            "title": f"Try a postback: {source}",
            "opts": self.model._meta,
            "original": source,
            "form": form,
            "result": result,
            "setup_templates": senders.templates_for(
                source.kind, request.build_absolute_uri(source.path)
            ),
        }
        status = result.http_status if result is not None else 200
        return TemplateResponse(
            request, "admin/attribution/postbacksource/try.html", context, status=status
        )

    @admin.action(description="Rotate token (the old one keeps working for 7 days)")
    def rotate_token(self, request: HttpRequest, queryset: QuerySet[PostbackSource]) -> None:
        for source in queryset:
            tokens.source_rotate_token(source=source, actor=request.user)
        self.message_user(request, f"Rotated {queryset.count()} token(s).", messages.SUCCESS)


@admin.register(Postback)
class PostbackAdmin(ReadOnlyAdmin):
    list_display = ("id", "received_at", "kind", "source", "status", "signature", "short_reason")
    list_filter = ("status", "kind", "signature", "source")
    search_fields = ("=id", "=dedup_key", "query")
    list_select_related = ("source",)
    date_hierarchy = "received_at"
    show_full_result_count = False
    actions = ("rerun",)

    @admin.display(description="Reason")
    def short_reason(self, obj: Postback) -> str:
        return obj.reason[:120]

    @admin.action(description="Re-run failed postbacks")
    def rerun(self, request: HttpRequest, queryset: QuerySet[Postback]) -> None:
        ids = list(queryset.values_list("pk", flat=True))
        count = work.postbacks_rerun(postback_ids=ids, actor=request.user)
        self.message_user(request, f"{count} failed postback(s) sent to the worker again.")

    def get_urls(self):
        return [
            path(
                "health/",
                self.admin_site.admin_view(self.health_view),
                name="attribution_postback_health",
            ),
            path(
                "health/rerun/",
                self.admin_site.admin_view(self.rerun_view),
                name="attribution_postback_rerun",
            ),
            *super().get_urls(),
        ]

    def rerun_view(self, request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        ids = [int(i) for i in request.POST.getlist("id") if i.isdigit() and len(i) < 19]
        count = work.postbacks_rerun(postback_ids=ids, actor=request.user)
        self.message_user(request, f"{count} failed postback(s) sent to the worker again.")
        return HttpResponseRedirect(reverse("admin:attribution_postback_health"))

    def health_view(self, request: HttpRequest) -> HttpResponse:
        context = {
            **self.admin_site.each_context(request),
            "title": "Ingestion health",
            "health": monitor.ingestion_health(now=timezone.now()),
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


class ConversionStatusFilter(admin.SimpleListFilter):
    """Status filter whose first choice is the review queue."""

    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin):
        return Conversion.Status.choices

    def queryset(self, request: HttpRequest, queryset: QuerySet[Conversion]):
        return queryset.filter(status=self.value()) if self.value() else queryset


class ReviewActionForm(ActionForm):
    """The list's action bar with a note beside it: a rejection must say why."""

    note = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.TextInput(attrs={"placeholder": "Note (required to reject)", "size": 32}),
    )


class ReviewForm(forms.Form):
    note = forms.CharField(
        required=False,
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Kept in the audit log. Required to reject.",
    )
    decision = forms.ChoiceField(choices=[("approve", "Approve"), ("reject", "Reject")])

    def clean(self) -> dict:
        data = super().clean()
        if data.get("decision") == "reject" and not data.get("note", "").strip():
            self.add_error("note", "Say why it is rejected: the note is kept in the audit log.")
        return data


@admin.register(Conversion)
class ConversionAdmin(admin.ModelAdmin):
    """Every credited or refused action; pending ones are the fraud review queue."""

    # Few, narrow columns, status and reason first: the queue must read at 1366 px.
    list_display = (
        "id",
        "occurred_at",
        "status",
        "reason_code",
        "what",
        "affiliate",
        "campaign",
        "amount",
        "ctit_seconds",
    )
    list_display_links = ("id", "occurred_at")
    list_filter = (
        ConversionStatusFilter,
        "reason",
        "type",
        "channel",
        "platform",
        "method",
        "campaign",
    )
    search_fields = ("=id", "=affiliate__id", "affiliate__name", "=player_key", "=claim_key")
    list_select_related = ("affiliate", "campaign")
    date_hierarchy = "occurred_at"
    show_full_result_count = False
    actions = ("approve", "reject")
    action_form = ReviewActionForm
    readonly_fields = [f.name for f in Conversion._meta.fields]
    change_form_template = "admin/attribution/conversion/change_form.html"

    class Media:
        css = {"all": ("console.css",)}

    @admin.display(description="Reason", ordering="reason")
    def reason_code(self, obj: Conversion) -> str:
        return format_html('<span title="{}">{}</span>', obj.get_reason_display(), obj.reason)

    @admin.display(description="Type")
    def what(self, obj: Conversion) -> str:
        return f"{obj.type} · {obj.platform}"

    @admin.display(description="Revenue", ordering="revenue")
    def amount(self, obj: Conversion) -> str:
        return f"{obj.revenue:.2f} {obj.currency}" if obj.revenue is not None else "-"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_urls(self):
        return [
            path(
                "<int:pk>/review/",
                self.admin_site.admin_view(self.review_view),
                name="attribution_conversion_review",
            ),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ):
        conversion = self.get_object(request, object_id)
        # Every field is read-only: a decision goes through the review form, not "Save".
        extra_context = {**(extra_context or {}), "show_save": False}
        extra_context["show_save_and_continue"] = False
        if conversion is not None:
            extra_context["evidence"] = evidence.conversion_evidence(conversion)
            extra_context["review_form"] = ReviewForm()
            extra_context["can_review"] = self.has_change_permission(request, conversion)
        return super().change_view(request, object_id, form_url, extra_context)

    def review_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """Approve or reject one conversion from its page, with a note."""
        conversion = self.get_object(request, str(pk))
        if conversion is None or not self.has_change_permission(request, conversion):
            raise Http404("no such conversion")
        change_url = reverse("admin:attribution_conversion_change", args=[conversion.pk])
        if request.method != "POST":
            return HttpResponseRedirect(change_url)
        form = ReviewForm(request.POST)
        if not form.is_valid():
            context = {
                **self.admin_site.each_context(request),
                "title": f"Review {conversion}",
                "opts": self.model._meta,
                "original": conversion,
                "evidence": evidence.conversion_evidence(conversion),
                "review_form": form,
                "can_review": True,
            }
            return TemplateResponse(
                request, "admin/attribution/conversion/review.html", context, status=400
            )
        approve = form.cleaned_data["decision"] == "approve"
        amend.conversion_review(
            conversion=conversion,
            approve=approve,
            actor=request.user,
            note=form.cleaned_data["note"].strip(),
        )
        verb = "approved" if approve else "rejected"
        self.message_user(request, f"{conversion} {verb}.", messages.SUCCESS)
        queue = reverse("admin:attribution_conversion_changelist") + "?status=pending"
        return HttpResponseRedirect(queue)

    def _review(self, request: HttpRequest, queryset: QuerySet[Conversion], approve: bool) -> None:
        note = (request.POST.get("note") or "").strip()[:500]
        if not approve and not note:
            self.message_user(
                request, "Write a note to reject: it is kept in the audit log.", messages.ERROR
            )
            return
        done = 0
        for conversion in queryset.order_by("pk"):
            amend.conversion_review(
                conversion=conversion, approve=approve, actor=request.user, note=note
            )
            done += 1
        verb = "approved" if approve else "rejected"
        self.message_user(request, f"{done} conversion(s) {verb}.", messages.SUCCESS)

    @admin.action(description="Approve selected conversions", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Conversion]) -> None:
        self._review(request, queryset, approve=True)

    @admin.action(description="Reject selected conversions (with the note)", permissions=["change"])
    def reject(self, request: HttpRequest, queryset: QuerySet[Conversion]) -> None:
        self._review(request, queryset, approve=False)


@admin.register(FraudPolicy)
class FraudPolicyAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = (
        "campaign",
        "min_ctit_seconds",
        "low_ctit_action",
        "flood_clicks_per_install",
        "flood_action",
        "burst_max_per_ip",
        "burst_action",
    )
    autocomplete_fields = ("campaign",)
    list_select_related = ("campaign__brand",)


@admin.register(SkanMapping)
class SkanMappingAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = ("ad_network_id", "source_identifier", "app", "campaign", "affiliate")
    list_filter = ("app", "ad_network_id")
    search_fields = ("ad_network_id", "source_identifier", "affiliate__name")
    autocomplete_fields = ("app", "campaign", "affiliate")
    list_select_related = ("app", "campaign", "affiliate")


@admin.register(DailyRollup)
class DailyRollupAdmin(ReadOnlyAdmin):
    list_display = (
        "day",
        "affiliate_id",
        "campaign_id",
        "channel",
        "platform",
        "country",
        "clicks",
        "installs",
        "registrations",
        "ftds",
        "deposit_amount",
        "currency",
        "rejected",
    )
    list_filter = ("channel", "platform")
    search_fields = ("=affiliate_id", "=campaign_id")
    date_hierarchy = "day"
    show_full_result_count = False


@admin.register(OutboundEndpoint)
class OutboundEndpointAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = (
        "id",
        "affiliate",
        "campaign",
        "url_template",
        "method",
        "is_active",
        "consecutive_failures",
        "disabled_reason",
    )
    list_filter = ("is_active", "method")
    search_fields = ("url_template", "affiliate__name", "=affiliate__id")
    autocomplete_fields = ("affiliate", "campaign")
    list_select_related = ("affiliate", "campaign")
    actions = ("send_test", "enable")

    @admin.action(description="Send a test postback")
    def send_test(self, request: HttpRequest, queryset: QuerySet[OutboundEndpoint]) -> None:
        refused = [r for endpoint in queryset if (r := schedule.outbound_test(endpoint=endpoint))]
        if refused:
            self.message_user(request, f"{len(refused)} not sent: {refused[0]}", messages.WARNING)
        else:
            self.message_user(request, "Test postbacks queued; see the delivery log.")

    @admin.action(description="Switch back on (resets the failure count)")
    def enable(self, request: HttpRequest, queryset: QuerySet[OutboundEndpoint]) -> None:
        for endpoint in queryset:
            schedule.endpoint_enable(endpoint=endpoint)
        self.message_user(request, f"{queryset.count()} endpoint(s) switched on.")


@admin.register(OutboundDelivery)
class OutboundDeliveryAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "endpoint",
        "event",
        "conversion",
        "attempt",
        "status_code",
        "succeeded",
        "latency_ms",
        "error",
    )
    list_filter = ("event", "succeeded")
    search_fields = ("=conversion__id", "=endpoint__id", "url")
    list_select_related = ("endpoint",)
    date_hierarchy = "created_at"
    show_full_result_count = False
    actions = ("resend",)

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return obj is None and request.user.is_staff

    @admin.action(description="Send again")
    def resend(self, request: HttpRequest, queryset: QuerySet[OutboundDelivery]) -> None:
        for delivery in queryset:
            schedule.outbound_resend(delivery=delivery)
        self.message_user(request, "Queued again; see the log.")
