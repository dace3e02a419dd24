import io

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from affiliates.models import Affiliate, Brand, Campaign
from attribution.models import Channel
from portal.lib.admin import ReadOnlyAdmin, SafeAutocomplete
from portal.lib.spreadsheet import csv_response

from . import activity, caps, invoices, reports, runs, selectors, tasks
from .models import (
    BrandApiToken,
    Cap,
    CommissionPlan,
    CpaRule,
    FxRate,
    Invoice,
    LedgerEntry,
    NgrStatement,
    NgrTier,
    Payout,
    PayoutRun,
    PlanAssignment,
    PlanVersion,
    PlayerActivity,
    PlayerActivityRevision,
    RevShareStatement,
    Tier,
)


class CpaRuleInline(admin.TabularInline):
    model = CpaRule
    extra = 1


class TierInline(admin.TabularInline):
    model = Tier
    extra = 0


class NgrTierInline(admin.TabularInline):
    model = NgrTier
    extra = 0


class PlanVersionInline(admin.TabularInline):
    model = PlanVersion
    extra = 0
    fields = ("valid_from", "revshare_percent", "tier_mode", "baseline_ftds", "edit")
    readonly_fields = ("edit",)
    show_change_link = True

    @admin.display(description="Rules")
    def edit(self, obj: PlanVersion) -> str:
        if not obj.pk:
            return "-"
        return format_html(
            '<a href="{}">CPA rules and tiers</a>',
            reverse("admin:payouts_planversion_change", args=[obj.pk]),
        )


@admin.register(CommissionPlan)
class CommissionPlanAdmin(admin.ModelAdmin):
    list_display = ("name", "currency", "hold_days", "negative_carryover", "versions")
    search_fields = ("name",)
    inlines = (PlanVersionInline,)

    def get_queryset(self, request: HttpRequest) -> QuerySet[CommissionPlan]:
        return super().get_queryset(request).annotate(version_count=Count("versions"))

    @admin.display(ordering="version_count")
    def versions(self, obj: CommissionPlan) -> int:
        return obj.version_count


@admin.register(PlanVersion)
class PlanVersionAdmin(admin.ModelAdmin):
    list_display = (
        "plan",
        "valid_from",
        "revshare_basis",
        "revshare_percent",
        "tier_mode",
        "baseline_ftds",
    )
    list_filter = ("plan", "revshare_basis")
    inlines = (CpaRuleInline, TierInline, NgrTierInline)


@admin.register(PlanAssignment)
class PlanAssignmentAdmin(SafeAutocomplete, admin.ModelAdmin):
    list_display = ("campaign", "affiliate", "plan")
    list_filter = ("plan", "campaign")
    search_fields = ("affiliate__name", "campaign__name")
    autocomplete_fields = ("campaign", "affiliate")
    list_select_related = ("campaign", "affiliate", "plan")


LIMIT_FIELDS = ("period", "time_zone", "metric", "conversion_type", "limit", "currency")


@admin.register(Cap)
class CapAdmin(SafeAutocomplete, admin.ModelAdmin):
    """Caps per campaign or per affiliate on it; the counters are the ledger's (payouts.caps)."""

    list_display = ("campaign", "affiliate", "cap", "action", "used_now", "is_active")
    list_filter = ("is_active", "action", "period", "metric")
    search_fields = ("campaign__name", "affiliate__name")
    autocomplete_fields = ("campaign", "affiliate")
    list_select_related = ("campaign__brand", "affiliate")
    fieldsets = (
        (None, {"fields": ("campaign", "affiliate", "is_active")}),
        ("Limit", {"fields": LIMIT_FIELDS}),
        ("Past the limit", {"fields": ("action",)}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return caps.with_current_usage(super().get_queryset(request))

    @admin.display(description="Cap")
    def cap(self, obj: Cap) -> str:
        return obj.describe().removesuffix(" for you").removesuffix(" for the whole offer")

    @admin.display(description="Used this period")
    def used_now(self, obj: Cap) -> str:
        usage = caps.current_usage(obj)
        used = (
            0
            if usage is None
            else usage.amount
            if obj.metric == Cap.Metric.PAYOUT
            else usage.conversions
        )
        reached = " (reached)" if usage is not None and usage.reached_at else ""
        limit = obj.limit if obj.metric == Cap.Metric.PAYOUT else int(obj.limit)
        return f"{used} / {limit}{reached}"


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ("day", "currency", "rate")
    list_filter = ("currency",)
    date_hierarchy = "day"


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    """Append-only: managers read the ledger; money moves through conversions and runs."""

    list_display = (
        "id",
        "created_at",
        "beneficiary",
        "kind",
        "amount",
        "currency",
        "status",
        "available_at",
        "conversion",
        "payout",
        "note",
    )
    list_filter = ("kind", "status", "currency")
    search_fields = ("=beneficiary__id", "beneficiary__name", "=conversion__id", "=key")
    list_select_related = ("beneficiary",)
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(RevShareStatement)
class RevShareStatementAdmin(ReadOnlyAdmin):
    list_display = (
        "period",
        "affiliate",
        "plan",
        "deposits",
        "net_revenue",
        "carried_in",
        "percent",
        "commission",
        "carried_out",
    )
    list_filter = ("plan", "period")
    list_select_related = ("affiliate", "plan")


class RunForm(forms.ModelForm):
    """The period, checked by the same rules as the API and the command: a bad period is an
    error here, and months whose RevShare is not closed must be confirmed."""

    confirm_open_months = forms.BooleanField(
        required=False,
        label="Create it anyway",
        help_text="RevShare of the months not closed yet is then left for a later run.",
    )

    class Meta:
        model = PayoutRun
        fields = ("period_start", "period_end")

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("period_start"), data.get("period_end")
        if start is None or end is None:
            return data
        check = runs.payout_run_check(period_start=start, period_end=end)
        for error in check.errors:
            self.add_error(None, error)
        self.open_months = check.open_months
        if check.open_months and not data.get("confirm_open_months") and not check.errors:
            self.add_error("confirm_open_months", str(runs.MonthsOpen(check.open_months)))
        return data


@admin.register(PayoutRun)
class PayoutRunAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "period_start",
        "period_end",
        "status",
        "progress",
        "payout_count",
        "created_at",
        "finished_at",
    )
    list_filter = ("status",)
    actions = ("approve", "export_csv", "cancel")
    form = RunForm
    change_form_template = "admin/payouts/payoutrun/change_form.html"

    class Media:
        css = {"all": ("console.css",)}

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict | None = None,
    ):
        run = self.get_object(request, object_id)
        extra_context = dict(extra_context or {})
        if run is not None:
            extra_context["summary"] = selectors.run_summary(run=run)
            extra_context["open_months"] = runs.revshare_open_months(
                run.period_start, run.period_end
            )
            extra_context["can_approve"] = run.status == PayoutRun.Status.DRAFT
        return super().change_view(request, object_id, form_url, extra_context)

    def get_urls(self):
        return [
            path(
                "<int:pk>/approve/",
                self.admin_site.admin_view(self.approve_view),
                name="payouts_payoutrun_approve",
            ),
            *super().get_urls(),
        ]

    def approve_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = self.get_object(request, str(pk))
        if run is None or not self.has_view_permission(request, run):
            raise Http404("no such payout run")
        page = reverse("admin:payouts_payoutrun_change", args=[run.pk])
        if request.method == "POST":
            try:
                runs.payout_run_approve(run=run, actor=request.user)
            except runs.PayoutError as exc:
                self.message_user(request, f"Run {run.pk}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Run {run.pk} approved.", messages.SUCCESS)
        return HttpResponseRedirect(page)

    def get_queryset(self, request: HttpRequest) -> QuerySet[PayoutRun]:
        return super().get_queryset(request).annotate(n=Count("payouts"))

    def get_fields(self, request: HttpRequest, obj: PayoutRun | None = None):
        if obj is not None:  # a run's page: its period; the confirmation was for creating it
            return ("period_start", "period_end")
        return ("period_start", "period_end", "confirm_open_months")

    @admin.display(description="Payouts", ordering="n")
    def payout_count(self, obj: PayoutRun) -> int:
        return obj.n

    def has_change_permission(self, request: HttpRequest, obj: PayoutRun | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        run = runs.payout_run_create(
            period_start=obj.period_start,
            period_end=obj.period_end,
            actor=request.user,
            open_months_confirmed=form.cleaned_data.get("confirm_open_months", False),
        )
        obj.pk = run.pk
        transaction.on_commit(lambda: tasks.execute_run.delay(run.pk))
        self.message_user(
            request, "The run is being worked out by a worker; its progress shows in the list."
        )

    @admin.action(description="Approve selected draft runs")
    def approve(self, request: HttpRequest, queryset: QuerySet[PayoutRun]) -> None:
        for run in queryset:
            try:
                runs.payout_run_approve(run=run, actor=request.user)
            except runs.PayoutError as exc:
                self.message_user(request, f"Run {run.pk}: {exc}", messages.ERROR)

    @admin.action(description="Cancel selected runs (frees their entries)")
    def cancel(self, request: HttpRequest, queryset: QuerySet[PayoutRun]) -> None:
        for run in queryset:
            try:
                runs.payout_run_cancel(run=run, actor=request.user)
            except runs.PayoutError as exc:
                self.message_user(request, f"Run {run.pk}: {exc}", messages.ERROR)

    @admin.action(description="Export payouts as CSV")
    def export_csv(self, request: HttpRequest, queryset: QuerySet[PayoutRun]) -> HttpResponse:
        payouts = (
            Payout.objects.filter(run__in=queryset)
            .select_related("affiliate", "run")
            .annotate(lines_count=Count("lines"))
            .order_by("run_id", "affiliate_id")
        )
        return csv_response(
            "payouts.csv",
            [
                "run",
                "period_start",
                "period_end",
                "affiliate_id",
                "affiliate",
                "amount",
                "currency",
                "status",
                "reference",
                "entries",
            ],
            (
                (
                    p.run_id,
                    p.run.period_start,
                    p.run.period_end,
                    p.affiliate_id,
                    p.affiliate.name,
                    p.amount,
                    p.currency,
                    p.status,
                    p.reference,
                    p.lines_count,
                )
                for p in payouts
            ),
        )


class ReferenceForm(ActionForm):
    reference = forms.CharField(required=False, help_text="Payment reference for 'mark paid'")


@admin.register(Payout)
class PayoutAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "run",
        "affiliate",
        "amount",
        "currency",
        "status",
        "reference",
        "paid_at",
        "statement",
    )
    list_filter = ("status", "currency", "run")
    search_fields = ("=affiliate__id", "affiliate__name", "reference")
    list_select_related = ("affiliate", "run")
    action_form = ReferenceForm
    actions = ("mark_paid",)

    @admin.display(description="Statement")
    def statement(self, obj: Payout) -> str:
        links = format_html(
            '<a href="{}">statement</a>', reverse("payout-statement", args=[obj.pk])
        )
        if obj.status in invoices.INVOICEABLE:
            links += format_html(
                ' · <a href="{}">invoice</a>', reverse("payout-invoice", args=[obj.pk])
            )
        return links

    @admin.action(description="Mark selected payouts paid (with the reference above)")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        reference = request.POST.get("reference", "")
        for payout in queryset.order_by("pk"):
            try:
                runs.payout_mark_paid(payout=payout, reference=reference, actor=request.user)
            except runs.PayoutError as exc:
                self.message_user(request, f"Payout {payout.pk}: {exc}", messages.ERROR)


# --- the operator's player activity -----------------------------------------------------------


class ActivityUploadForm(forms.Form):
    file = forms.FileField(label="CSV file", help_text="The API's columns, a header row first.")
    brand = forms.ModelChoiceField(
        queryset=Brand.objects.order_by("name"),
        required=False,
        help_text="The brand of rows without a brand column.",
    )
    dry_run = forms.BooleanField(
        required=False,
        initial=True,
        label="Dry run",
        help_text="Only check the file and say what would be created, revised or unchanged.",
    )


class CohortForm(forms.Form):
    by = forms.ChoiceField(
        choices=[("ftd_month", "FTD month"), ("registration_month", "Registration month")],
        required=False,
    )
    metric = forms.ChoiceField(choices=[(m, m) for m in reports.METRICS], required=False)
    affiliate = forms.ModelChoiceField(queryset=Affiliate.objects.order_by("name"), required=False)
    campaign = forms.ModelChoiceField(queryset=Campaign.objects.order_by("name"), required=False)
    channel = forms.ChoiceField(choices=[("", "any"), *Channel.choices], required=False)


@admin.register(PlayerActivity)
class PlayerActivityAdmin(ReadOnlyAdmin):
    list_display = (
        "player_id",
        "brand",
        "day",
        "product",
        "currency",
        "ggr",
        "bonuses",
        "deposits",
        "revision",
        "updated_at",
    )
    list_filter = ("brand", "product", "currency")
    search_fields = ("=player_id",)
    date_hierarchy = "day"
    list_select_related = ("brand",)
    change_list_template = "admin/payouts/playeractivity/change_list.html"

    def get_urls(self) -> list:
        upload = self.admin_site.admin_view(self.upload_view)
        cohort_view = self.admin_site.admin_view(self.cohorts_view)
        return [
            path("upload/", upload, name="payouts_playeractivity_upload"),
            path("cohorts/", cohort_view, name="payouts_playeractivity_cohorts"),
            *super().get_urls(),
        ]

    def cohorts_view(self, request: HttpRequest) -> HttpResponse:
        """Admin > Player activity > Cohorts: the program's (or one affiliate's, campaign's,
        channel's) players by the month they joined, as a heat map."""
        if not request.user.has_perm("payouts.view_playeractivity"):
            raise PermissionDenied
        form = CohortForm(request.GET or None)
        data = form.cleaned_data if form.is_valid() else {}
        affiliate, campaign = data.get("affiliate"), data.get("campaign")
        by, metric = data.get("by") or "ftd_month", data.get("metric") or "ngr"
        found = reports.cohorts(
            reports.Scope(
                affiliate_ids=[affiliate.pk] if affiliate else None,
                currency=settings.BASE_CURRENCY,
                campaign_id=campaign.pk if campaign else None,
                channel=data.get("channel") or "",
            ),
            by=by,
            metric=metric,
            through=timezone.now().date().replace(day=1),
        )
        rows = reports.heat_map(found)
        context = {
            **self.admin_site.each_context(request),
            "title": "Cohorts",
            "opts": self.model._meta,
            "form": form,
            "rows": rows,
            "width": range(max((len(r.cells) for r in rows), default=0)),
            "currency": settings.BASE_CURRENCY,
        }
        return TemplateResponse(request, "admin/payouts/playeractivity/cohorts.html", context)

    def upload_view(self, request: HttpRequest) -> HttpResponse:
        """Admin > Player activity > Upload: the import_activity command, in the browser."""
        if not request.user.has_perm("payouts.view_playeractivity") or not request.user.is_staff:
            raise PermissionDenied
        form = ActivityUploadForm(request.POST or None, request.FILES or None)
        result = None
        if request.method == "POST" and form.is_valid():
            result = _upload(request, form.cleaned_data)
        context = {
            **self.admin_site.each_context(request),
            "title": "Upload player activity",
            "opts": self.model._meta,
            "form": form,
            "result": result,
            "columns": ", ".join(activity.FIELDS_IN_ORDER),
        }
        return TemplateResponse(request, "admin/payouts/playeractivity/upload.html", context)


def _upload(request: HttpRequest, data: dict) -> dict:
    try:
        text = data["file"].read().decode("utf-8-sig")
    except UnicodeDecodeError:
        return {"errors": [], "problem": "The file is not UTF-8 text."}
    raw, warnings = activity.activity_read_csv(io.StringIO(text, newline=""))
    brand = data.get("brand")
    checked = activity.activity_check(raw, brand_id=brand.pk if brand else None)
    # Lines as a spreadsheet shows them: the header is line 1.
    errors = [(e.index + 2, e.field, e.reason) for e in checked.errors[:1000]]
    result = {"rows": len(raw), "warnings": warnings, "errors": errors, "dry_run": data["dry_run"]}
    result["error_count"] = len(checked.errors)
    if checked.errors:
        return result
    with transaction.atomic():
        # A dry run stores the rows and rolls back: its counts are exactly what a real run does.
        outcome = activity.activity_store(rows=checked.rows, actor=request.user)
        transaction.set_rollback(data["dry_run"])
    result["outcome"] = outcome.as_dict()
    return result


@admin.register(PlayerActivityRevision)
class PlayerActivityRevisionAdmin(ReadOnlyAdmin):
    list_display = ("activity", "revision", "actor", "token", "at")
    readonly_fields = ("activity", "revision", "old", "new", "actor", "token", "at")
    list_select_related = ("activity", "actor", "token__brand")


@admin.register(BrandApiToken)
class BrandApiTokenAdmin(admin.ModelAdmin):
    list_display = ("brand", "name", "active", "created_at")
    list_filter = ("active", "brand")
    fields = ("brand", "name", "active", "key")
    readonly_fields = ("key",)


@admin.register(NgrStatement)
class NgrStatementAdmin(admin.ModelAdmin):
    list_display = ("affiliate", "plan", "period", "ngr", "commission", "adjustment")
    list_filter = ("plan", "period")
    search_fields = ("affiliate__name",)
    readonly_fields = [f.name for f in NgrStatement._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    """Self-billing invoices: issued when a run is approved, never edited."""

    list_display = ("number", "payout", "amount", "currency", "issued_at", "pdf")
    search_fields = ("=number", "payout__affiliate__name")
    list_select_related = ("payout",)
    date_hierarchy = "issued_at"

    @admin.display(description="PDF")
    def pdf(self, obj: Invoice) -> str:
        return format_html(
            '<a href="{}">download</a>', reverse("payout-invoice", args=[obj.payout_id])
        )
