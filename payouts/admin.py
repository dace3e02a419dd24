from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.db import transaction
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from portal.lib.spreadsheet import csv_response

from . import runs, tasks
from .models import (
    CommissionPlan,
    CpaRule,
    FxRate,
    LedgerEntry,
    Payout,
    PayoutRun,
    PlanAssignment,
    PlanVersion,
    RevShareStatement,
    Tier,
)


class CpaRuleInline(admin.TabularInline):
    model = CpaRule
    extra = 1


class TierInline(admin.TabularInline):
    model = Tier
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
    list_display = ("plan", "valid_from", "revshare_percent", "tier_mode", "baseline_ftds")
    list_filter = ("plan",)
    inlines = (CpaRuleInline, TierInline)


@admin.register(PlanAssignment)
class PlanAssignmentAdmin(admin.ModelAdmin):
    list_display = ("campaign", "affiliate", "plan")
    list_filter = ("plan", "campaign")
    search_fields = ("affiliate__name", "campaign__name")
    autocomplete_fields = ("campaign", "affiliate")
    list_select_related = ("campaign", "affiliate", "plan")


@admin.register(FxRate)
class FxRateAdmin(admin.ModelAdmin):
    list_display = ("day", "currency", "rate")
    list_filter = ("currency",)
    date_hierarchy = "day"


class ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnly):
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
class RevShareStatementAdmin(ReadOnly):
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
    class Meta:
        model = PayoutRun
        fields = ("period_start", "period_end")


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

    def get_queryset(self, request: HttpRequest) -> QuerySet[PayoutRun]:
        return super().get_queryset(request).annotate(n=Count("payouts"))

    @admin.display(description="Payouts", ordering="n")
    def payout_count(self, obj: PayoutRun) -> int:
        return obj.n

    def has_change_permission(self, request: HttpRequest, obj: PayoutRun | None = None) -> bool:
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        run = runs.payout_run_create(
            period_start=obj.period_start, period_end=obj.period_end, actor=request.user
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
class PayoutAdmin(ReadOnly):
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
        return format_html('<a href="{}">statement</a>', reverse("payout-statement", args=[obj.pk]))

    @admin.action(description="Mark selected payouts paid (with the reference above)")
    def mark_paid(self, request: HttpRequest, queryset: QuerySet[Payout]) -> None:
        reference = request.POST.get("reference", "")
        for payout in queryset.order_by("pk"):
            try:
                runs.payout_mark_paid(payout=payout, reference=reference, actor=request.user)
            except runs.PayoutError as exc:
                self.message_user(request, f"Payout {payout.pk}: {exc}", messages.ERROR)
