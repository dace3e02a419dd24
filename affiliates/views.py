"""The affiliate's own pages: dashboard, conversions, links, payouts, settings, sign-up."""

import zoneinfo
from base64 import b32encode
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth import views as auth
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from rest_framework.authtoken.models import Token

from affiliates import notify, offers, profile, selectors, services, terms, twofactor
from affiliates.filters import ConversionFilter, PeriodFilter, StatsFilter
from affiliates.forms import (
    ContactForm,
    EndpointForm,
    LinkForm,
    LoginForm,
    PaymentDetailsForm,
    SettingsForm,
    SignupForm,
    TwoFactorForm,
)
from affiliates.models import Affiliate, NoticeKind, Notification, PaymentDetailsChange
from attribution.outbound import schedule
from attribution.rollups import reports
from payouts import reports as player_reports
from portal.lib.spreadsheet import csv_response

View = Callable[..., HttpResponse]


# The session key of a manager's read-only view of an affiliate's dashboard ("view as").
VIEW_AS = "view_as_affiliate"
READ_ONLY_METHODS = ("GET", "HEAD", "OPTIONS")


def viewing_as(request: HttpRequest) -> Affiliate | None:
    """The affiliate a manager is viewing as, or None. Only a manager's session that passed the
    admin's two-factor door (when on) can be one."""
    affiliate_id = request.session.get(VIEW_AS)
    user = request.user
    if not affiliate_id or not user.is_authenticated or not user.is_staff:
        return None
    if settings.ADMIN_2FA and not (hasattr(user, "is_verified") and user.is_verified()):
        return None
    return Affiliate.objects.filter(pk=affiliate_id).first()


def affiliate_required(view: View) -> View:
    """Logged in, with an affiliate account that is active (others see their status).

    A manager viewing as an affiliate gets that affiliate's pages, read-only: anything but a
    read is refused here, before any view code runs, so no form can write through it.
    """

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        shown = viewing_as(request)
        if shown is not None:
            request.affiliate, request.viewing_as = shown, True
            if request.method not in READ_ONLY_METHODS or getattr(view, "private", False):
                return render(
                    request, "affiliates/view_as_refused.html", {"shown": shown}, status=403
                )
            timezone.activate(shown.time_zone)
            try:
                return view(request, *args, **kwargs)
            finally:
                timezone.deactivate()
        affiliate = getattr(request.user, "affiliate", None)
        if affiliate is None:
            if request.user.is_staff:
                return redirect("admin:index")
            return render(request, "affiliates/no_account.html", status=403)
        if affiliate.status != Affiliate.Status.ACTIVE:
            return render(request, "affiliates/pending.html", {"affiliate": affiliate}, status=403)
        if affiliate.two_factor and not twofactor.verified(request.user):
            # A session that gave no one-time code (opened before the affiliate turned it on):
            # out, and in again with the code.
            logout(request)
            return redirect(f"{reverse('login')}?{urlencode({'next': request.path})}")
        if terms.terms_pending(request) is not None:
            # New terms were published: they are accepted before anything else is shown.
            return redirect(f"{reverse('terms-accept')}?{urlencode({'next': request.path})}")
        request.affiliate = affiliate
        # Pages render in the affiliate's zone; deactivate after, or the thread (reused by the
        # next request, maybe another user's) would keep it.
        timezone.activate(affiliate.time_zone)
        try:
            return view(request, *args, **kwargs)
        finally:
            timezone.deactivate()

    return wrapper


def private(view: View) -> View:
    """A page not shown to a manager viewing as the affiliate (its secrets, e.g. the API token)."""
    view.private = True
    return view


@require_POST
def view_as_stop(request: HttpRequest) -> HttpResponse:
    """End a manager's view-as session; back to the affiliate's admin page."""
    shown = viewing_as(request)
    request.session.pop(VIEW_AS, None)
    if shown is None:
        return redirect("admin:index")
    services.view_as_record(manager=request.user, affiliate=shown, started=False)
    return redirect("admin:affiliates_affiliate_change", shown.pk)


def _money(value) -> str:
    return f"{value:.2f}"


def _cell(metric: str, value) -> str | int:
    if value is None:
        return ""
    return _money(value) if metric in reports.AMOUNTS else int(value)


def _stats_filter(request: HttpRequest, affiliate: Affiliate, *, default: str) -> StatsFilter:
    """The filter form, bound to the query with the page's default period filled in."""
    data = request.GET.copy()
    data.setdefault("period", default)
    return StatsFilter(data, campaigns=selectors.campaigns_of(affiliate))


def _table_rows(table: reports.Table, keys: list[str]) -> list[list]:
    rows = []
    for key in keys:
        row = table.rows[key]
        rows.append([table.labels.get(key, key)] + [_cell(m, row[m]) for m in reports.METRICS])
    return rows


HEADER = ["", *reports.METRICS]


@affiliate_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Mobile (iOS, Android, SKAN) and web side by side for a period, with breakdowns."""
    affiliate = request.affiliate
    stats = _stats_filter(request, affiliate, default="last7")
    period, error = stats.chosen_period(time_zone=affiliate.time_zone, default="last7")
    filters = reports.Filters()
    if stats.is_valid():
        try:
            filters = stats.report_filters()
        except reports.ReportError as exc:
            error = str(exc)
    else:
        error = "Please correct the filters."
    if error:
        return render(
            request,
            "affiliates/dashboard.html",
            {"affiliate": affiliate, "stats": stats, "error": error, "period": None},
            status=400,
        )
    by = request.GET.get("by", "campaign")
    if by not in reports.BREAKDOWNS:
        by = "campaign"
    ids = [affiliate.pk]
    summary = reports.summary(
        affiliate_ids=ids,
        period=period,
        filters=filters,
        currency=affiliate.currency,
        time_zone=affiliate.time_zone,
    )
    days = reports.daily(
        affiliate_ids=ids,
        period=period,
        filters=filters,
        currency=affiliate.currency,
        time_zone=affiliate.time_zone,
    )
    sub = filters.sub
    if sub is not None and by in reports.SUBS and by != f"sub{sub[0]}":
        by = f"sub{sub[0]}"  # under a sub id filter, that sub id is the one to break down by
    breakdown = reports.breakdown(
        by=by,
        affiliate_ids=ids,
        period=period,
        filters=filters,
        currency=affiliate.currency,
        time_zone=affiliate.time_zone,
    )
    export = request.GET.get("export")
    stamp = f"{period.start}_{period.end}"
    if export == "summary":
        keys = list(summary.rows)
        rows = _table_rows(summary, keys)
        totals = summary.totals
        rows.append(["Total"] + [_cell(m, totals[m]) for m in reports.METRICS])
        return csv_response(f"summary_{stamp}.csv", HEADER, rows)
    if export == "daily":
        return csv_response(
            f"daily_{stamp}.csv",
            [
                "day",
                *(f"mobile_{m}" for m in reports.METRICS),
                *(f"web_{m}" for m in reports.METRICS),
                *(f"monthly_{m}" for m in reports.EARNINGS),
            ],
            (
                [
                    d["day"],
                    *(_cell(m, d["mobile"][m]) for m in reports.METRICS),
                    *(_cell(m, d["web"][m]) for m in reports.METRICS),
                    *(_cell(m, d["monthly"][m]) for m in reports.EARNINGS),
                ]
                for d in days
            ),
        )
    if export == "breakdown":
        return csv_response(
            f"{by}_{stamp}.csv", [by, *HEADER[1:]], _table_rows(breakdown, sorted(breakdown.rows))
        )
    mobile = summary.mobile()
    totals = summary.totals
    for d in days:
        d["from_subs"] = sum(d[part]["sub_commission"] for part in ("mobile", "web", "monthly"))
    # The in-app purchase revenue row only where there is any (an iGaming program has none).
    metrics = [m for m in reports.METRICS if m != "revenue" or totals["revenue"]]
    return render(
        request,
        "affiliates/dashboard.html",
        {
            "affiliate": affiliate,
            "stats": stats,
            "error": error,
            "period": period,
            "summary": summary,
            "mobile": mobile,
            "totals": totals,
            "earned": totals["commission"] + totals["sub_commission"],
            "monthly": any(
                d["monthly"]["commission"] or d["monthly"]["sub_commission"] for d in days
            ),
            "metrics": metrics,
            "money": set(reports.AMOUNTS),
            "columns": [c for c in summary.rows],
            "days": days,
            "breakdown": breakdown,
            "breakdown_keys": sorted(
                breakdown.rows, key=lambda k: -(breakdown.rows[k]["clicks"] or 0)
            ),
            "by": by,
            "breakdowns": reports.BREAKDOWNS,
            "query": request.GET.urlencode(),
        },
    )


@affiliate_required
def conversions(request: HttpRequest) -> HttpResponse:
    affiliate = request.affiliate
    stats = _stats_filter(request, affiliate, default="last30")
    period, error = stats.chosen_period(time_zone=affiliate.time_zone, default="last30")
    if error:
        messages.error(request, error)
    listed = ConversionFilter(
        request.GET,
        queryset=reports.conversions(
            affiliate_ids=[affiliate.pk], period=period, time_zone=affiliate.time_zone
        ),
        campaigns=selectors.campaigns_of(affiliate),
    )
    if request.GET.get("export") == "csv":
        return csv_response(
            f"conversions_{period.start}_{period.end}.csv",
            [
                "id",
                "occurred_at",
                "type",
                "channel",
                "platform",
                "campaign",
                "status",
                "reason",
                "revenue",
                "currency",
                "country",
                "method",
            ],
            (
                [
                    c.pk,
                    timezone.localtime(c.occurred_at).isoformat(),
                    c.type,
                    c.channel,
                    c.platform,
                    c.campaign.name if c.campaign else "",
                    c.status,
                    c.public_reason.label,
                    c.revenue if c.revenue is not None else "",
                    c.currency,
                    c.country,
                    c.method,
                ]
                for c in listed.qs.iterator(chunk_size=2000)
            ),
        )
    page = Paginator(listed.qs, 50).get_page(request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    return render(
        request,
        "affiliates/conversions.html",
        {
            "affiliate": affiliate,
            "stats": stats,
            "listed": listed,
            "page": page,
            "period": period,
            "query": params.urlencode(),
        },
    )


@affiliate_required
def links(request: HttpRequest) -> HttpResponse:
    affiliate = request.affiliate
    wanted = request.GET.get("campaign", "")
    form = LinkForm(
        request.POST or None,
        affiliate=affiliate,
        initial={"campaign": int(wanted)} if wanted.isascii() and wanted.isdigit() else None,
    )
    if request.method == "POST" and form.is_valid():
        link = services.link_create(affiliate=affiliate, **form.cleaned_data)
        messages.success(request, f"Link {link.code} created.")
        return redirect("affiliate-links")
    base = request.build_absolute_uri("/c/")
    return render(
        request,
        "affiliates/links.html",
        {
            "affiliate": affiliate,
            "form": form,
            "links": selectors.links_of(affiliate),
            "base": base,
        },
    )


OFFERS_PER_PAGE = 20


@affiliate_required
def offers_page(request: HttpRequest) -> HttpResponse:
    """Every campaign the affiliate may see: their own terms, access, creatives."""
    affiliate = request.affiliate
    search = request.GET.get("q", "")[:100]
    page = Paginator(offers.campaigns_listed(affiliate, search), OFFERS_PER_PAGE).get_page(
        request.GET.get("page")
    )
    return render(
        request,
        "affiliates/offers.html",
        {
            "affiliate": affiliate,
            "offers": offers.offers_for(affiliate, page.object_list),
            "page": page,
            "search": search,
            "query": urlencode({"q": search}) if search else "",
        },
    )


@affiliate_required
@require_POST
def offer_request(request: HttpRequest, campaign_id: int) -> HttpResponse:
    """Ask for access to an approval-only campaign."""
    affiliate = request.affiliate
    campaign = offers.campaigns_visible(affiliate).filter(pk=campaign_id).first()
    if campaign is None:
        raise Http404("No such offer.")
    try:
        offers.access_request(
            affiliate=affiliate,
            campaign=campaign,
            message=request.POST.get("message", "").strip(),
        )
    except offers.AccessRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, f"Access to {campaign.name} requested: a manager will answer.")
    return redirect("affiliate-offers")


@affiliate_required
def creative_download(request: HttpRequest, creative_id: int) -> HttpResponse:
    """A banner of a campaign the affiliate may use, read through the storage API."""
    creative = offers.creative_for(request.affiliate, creative_id)
    if creative is None:
        raise Http404("No such creative.")
    response = FileResponse(
        creative.file.open("rb"), filename=creative.file.name.rsplit("/", 1)[-1]
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; img-src 'self'"
    return response


@affiliate_required
def profile_page(request: HttpRequest) -> HttpResponse:
    """Contact details, password, payment details (changed through a mailed confirmation)."""
    affiliate = request.affiliate
    which = request.POST.get("form") if request.method == "POST" else None
    contact = ContactForm(
        request.POST if which == "contact" else None,
        instance=affiliate,
        initial={"email": affiliate.user.email},
    )
    payment = PaymentDetailsForm(request.POST if which == "payment" else None, user=affiliate.user)
    # The changes asked for, newest first; one of a field at most is still waiting.
    history = list(affiliate.setting_changes.filter(cancelled_at=None)[:10])
    waiting = {c.field: c.new for c in history if c.applied_at is None}
    choices = SettingsForm(
        request.POST if which == "settings" else None,
        initial={
            "time_zone": waiting.get("time_zone", affiliate.time_zone),
            "currency": waiting.get("currency", affiliate.currency),
        },
    )
    if which == "settings" and choices.is_valid():
        made = profile.settings_change_request(
            affiliate=Affiliate.objects.get(pk=affiliate.pk),
            changes=choices.cleaned_data,
            actor=request.user,
        )
        if made:
            zone = affiliate.time_zone
            when = made[0].effective_at.astimezone(zoneinfo.ZoneInfo(zone))
            what = ", ".join(f"{c.get_field_display()} {c.new}" for c in made)
            messages.success(
                request, f"{what} from the start of your next day ({when:%Y-%m-%d %H:%M}, {zone})."
            )
        else:
            messages.success(request, "Nothing changed.")
        return redirect("affiliate-profile")
    if which == "contact" and contact.is_valid():
        data = contact.cleaned_data
        changed = profile.contact_update(
            affiliate=Affiliate.objects.get(pk=affiliate.pk),
            email=data["email"],
            changes={k: data.get(k) for k in profile.CONTACT_FIELDS},
            actor=request.user,
        )
        messages.success(request, "Saved." if changed else "Nothing changed.")
        return redirect("affiliate-profile")
    if which == "payment" and payment.is_valid():
        confirm = request.build_absolute_uri(
            reverse("affiliate-payment-confirm", args=["TOKEN"])
        ).replace("TOKEN", "{token}")
        profile.payment_change_request(
            affiliate=affiliate,
            details=payment.cleaned_data,
            confirm_url=confirm,
            actor=request.user,
        )
        messages.success(
            request,
            f"We mailed a confirmation link to {affiliate.user.email}: the new details apply "
            "once you follow it.",
        )
        return redirect("affiliate-profile")
    return render(
        request,
        "affiliates/profile.html",
        {
            "affiliate": affiliate,
            "contact": contact,
            "payment": payment,
            "choices": choices,
            "history": history,
            "changes": affiliate.payment_changes.all()[:5],
        },
    )


@affiliate_required
@private
def payment_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """The link in the confirmation mail: GET shows what is confirmed, POST confirms it (a mail
    scanner that fetches links must not confirm anything)."""
    affiliate = request.affiliate
    pending = affiliate.payment_changes.filter(
        token=token, status=PaymentDetailsChange.Status.AWAITING_EMAIL
    ).first()
    if request.method == "POST":
        change = profile.payment_change_confirm(affiliate=affiliate, token=token)
        if change is None:
            messages.error(request, "This link is used, replaced or too old: ask again.")
        else:
            messages.success(
                request, "Confirmed. Your next payout waits for your manager to check it."
            )
        return redirect("affiliate-profile")
    return render(request, "affiliates/payment_confirm.html", {"change": pending})


@affiliate_required
@private
def api_token(request: HttpRequest) -> HttpResponse:
    if request.method == "POST":
        token = services.api_token_renew(user=request.user)
        messages.success(request, "A new API token was made; the old one no longer works.")
        return render(request, "affiliates/api_token.html", {"token": token, "shown": True})
    token = Token.objects.filter(user=request.user).first()
    return render(request, "affiliates/api_token.html", {"token": token, "shown": False})


@affiliate_required
def payouts(request: HttpRequest) -> HttpResponse:
    affiliate = request.affiliate
    listed = selectors.payouts_of(affiliate)
    if request.GET.get("export") == "csv":
        return csv_response(
            "payouts.csv",
            [
                "id",
                "period_start",
                "period_end",
                "amount",
                "currency",
                "status",
                "reference",
                "paid_at",
            ],
            (
                [
                    p.pk,
                    p.run.period_start,
                    p.run.period_end,
                    p.amount,
                    p.currency,
                    p.status,
                    p.reference,
                    p.paid_at or "",
                ]
                for p in listed
            ),
        )
    return render(
        request,
        "affiliates/payouts.html",
        {"affiliate": affiliate, "payouts": listed, "balance": selectors.balance_of(affiliate)},
    )


SUB_METRICS = ("clicks", "ftds", "deposit_amount", "revenue", "sub_commission")


@affiliate_required
def sub_affiliates(request: HttpRequest) -> HttpResponse:
    """One row per sub-affiliate for a period: their clicks, FTDs and revenue, and the share of
    their commission the affiliate earned (the override)."""
    affiliate = request.affiliate
    subs = list(selectors.sub_affiliates_of(affiliate))
    data = request.GET.copy()
    data.setdefault("period", "this_month")
    picker = PeriodFilter(data)
    period, error = picker.chosen_period(time_zone=affiliate.time_zone, default="this_month")
    if not picker.is_valid():
        error = "Please correct the period."
    table = reports.sub_affiliates(
        affiliate_id=affiliate.pk,
        sub_ids=[s.pk for s in subs],
        period=period,
        currency=affiliate.currency,
    )
    names = {str(s.pk): s for s in subs}
    rows = [
        {"key": key, "sub": names.get(key), "label": table.labels.get(key, ""), **table.rows[key]}
        for key in [*(str(s.pk) for s in subs), *(k for k in table.rows if k not in names)]
    ]
    if request.GET.get("export") == "csv" and not error:
        return csv_response(
            f"sub_affiliates_{period.start}_{period.end}.csv",
            ["sub_affiliate", "status", *SUB_METRICS],
            (
                [
                    row["sub"].name if row["sub"] else row["label"],
                    row["sub"].status if row["sub"] else "",
                    *(_cell(m, row[m]) for m in SUB_METRICS),
                ]
                for row in rows
            ),
        )
    return render(
        request,
        "affiliates/sub_affiliates.html",
        {
            "affiliate": affiliate,
            "stats": picker,
            "error": error,
            "rows": rows,
            "totals": table.totals,
            "metrics": SUB_METRICS,
            "period": period,
            "query": data.urlencode(),
            "referral": request.build_absolute_uri(f"/signup/?ref={affiliate.referral_code}"),
        },
        status=400 if error else 200,
    )


@affiliate_required
def postback_settings(request: HttpRequest) -> HttpResponse:
    affiliate = request.affiliate
    form = EndpointForm(request.POST or None, affiliate=affiliate)
    if request.method == "POST" and form.is_valid():
        endpoint = form.save(commit=False)
        endpoint.affiliate = affiliate
        endpoint.save()
        messages.success(request, "Postback URL saved.")
        return redirect("affiliate-postbacks")
    return render(
        request,
        "affiliates/postbacks.html",
        {
            "affiliate": affiliate,
            "form": form,
            "endpoints": selectors.endpoints_of(affiliate),
            "deliveries": selectors.deliveries_of(affiliate),
        },
    )


@affiliate_required
@require_POST
def postback_delete(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(selectors.endpoints_of(request.affiliate), pk=endpoint_id)
    endpoint.delete()
    messages.success(request, "Postback URL removed.")
    return redirect("affiliate-postbacks")


def signup(request: HttpRequest) -> HttpResponse:
    """Anyone may apply; the account waits for a manager's approval."""
    current = terms.terms_current()
    form = SignupForm(
        request.POST or None, initial={"ref": request.GET.get("ref", "")}, terms=current
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        affiliate = services.affiliate_apply(
            username=data["username"],
            email=data["email"],
            password=data["password1"],
            name=data["name"],
            time_zone=data["time_zone"],
            currency=data["currency"],
            referral_code=data.get("ref", ""),
            profile={k: data.get(k) or "" for k in services.SIGNUP_PROFILE},
            terms=current,
            ip=request.META.get("REMOTE_ADDR") or None,
        )
        # The same answer whether or not the username or email had an account: only the mail
        # to the address given says which.
        services.signup_mail(
            email=data["email"],
            username=data["username"],
            applied=affiliate is not None,
            reset_url=request.build_absolute_uri(reverse("password_reset")),
        )
        return redirect("signup-done")
    return render(request, "registration/signup.html", {"form": form})


class LoginView(auth.LoginView):
    """``/login/``: a manager's session is verified by their one-time code (``LoginForm``)."""

    form_class = LoginForm
    redirect_authenticated_user = True

    def form_valid(self, form: LoginForm) -> HttpResponse:
        response = super().form_valid(form)
        if form.otp_device is not None:
            otp_login(self.request, form.otp_device)
        return response


def terms_page(request: HttpRequest) -> HttpResponse:
    """The program's current terms, for anyone (sign-up links here)."""
    return render(request, "affiliates/terms.html", {"terms": terms.terms_current()})


@login_required
def terms_accept(request: HttpRequest) -> HttpResponse:
    """Accept the newly published terms; then on to where the affiliate was going."""
    current = terms.terms_current()
    wanted = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(wanted, allowed_hosts={request.get_host()}):
        wanted = ""
    if current is None:
        return redirect(wanted or "affiliate-dashboard")
    if request.method == "POST" and not viewing_as(request):
        terms.terms_accept(
            user=request.user, terms=current, ip=request.META.get("REMOTE_ADDR") or None
        )
        request.session[terms.SESSION_KEY] = current.version
        return redirect(wanted or "affiliate-dashboard")
    return render(
        request, "affiliates/terms.html", {"terms": current, "accept": True, "next": wanted}
    )


def signup_done(request: HttpRequest) -> HttpResponse:
    return render(request, "registration/signup_done.html")


@affiliate_required
@require_POST
def postback_test(request: HttpRequest, endpoint_id: int) -> HttpResponse:
    endpoint = get_object_or_404(selectors.endpoints_of(request.affiliate), pk=endpoint_id)
    refused = schedule.outbound_test(endpoint=endpoint)
    if refused:
        messages.error(request, refused)
    else:
        messages.success(request, "A test postback is on its way; see the delivery log.")
    return redirect("affiliate-postbacks")


@affiliate_required
@require_POST
def postback_resend(request: HttpRequest, delivery_id: int) -> HttpResponse:
    delivery = get_object_or_404(
        selectors.deliveries_of(request.affiliate, limit=None), pk=delivery_id
    )
    schedule.outbound_resend(delivery=delivery)
    messages.success(request, "The postback will be sent again.")
    return redirect("affiliate-postbacks")


class LogoutView(auth.LogoutView):
    """``/logout/`` from a link or a typed address: GET asks, and only the POST it sends (with
    its CSRF token) logs out, so that no page elsewhere can log a user out with an image."""

    http_method_names = ["get", "post", "options"]

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not request.user.is_authenticated:
            return redirect(self.get_success_url())
        return render(request, "registration/logout_confirm.html")


COHORT_BY = {"ftd_month": "FTD month", "registration_month": "Registration month"}
COHORT_METRICS = {
    "ngr": "NGR",
    "deposits": "Deposits",
    "commission": "Commission",
    "players": "Active players",
    "ngr_per_player": "Cumulative NGR per player",
}


@affiliate_required
def cohorts(request: HttpRequest) -> HttpResponse:
    """The affiliate's players by the month they joined, month by month since: a heat map."""
    affiliate = request.affiliate
    by = request.GET.get("by") if request.GET.get("by") in COHORT_BY else "ftd_month"
    metric = request.GET.get("metric")
    metric = metric if metric in COHORT_METRICS else "ngr"
    through = timezone.now().date().replace(day=1)
    found = player_reports.cohorts(
        player_reports.Scope(affiliate_ids=[affiliate.pk], currency=affiliate.currency),
        by=by,
        metric=metric,
        through=through,
    )
    if request.GET.get("export") == "csv":
        width = max((len(c.values) for c in found), default=0)
        return csv_response(
            "cohorts.csv",
            ["cohort", "players", *[f"m{k}" for k in range(width)]],
            ([f"{c.cohort:%Y-%m}", c.players, *c.values] for c in found),
        )
    rows = player_reports.heat_map(found)
    context = {
        "affiliate": affiliate,
        "rows": rows,
        "width": range(max((len(r.cells) for r in rows), default=0)),
        "by": by,
        "metric": metric,
        "by_choices": COHORT_BY,
        "metric_choices": COHORT_METRICS,
    }
    return render(request, "affiliates/cohorts.html", context)


# --- notifications: the bell's inbox, kinds on and off, unsubscribe from an email -------------


@login_required
def notifications(request: HttpRequest) -> HttpResponse:
    """The signed-in user's own notices (never another's), newest first; kinds on and off."""
    user = request.user
    if request.method == "POST":
        if "read" in request.POST:
            notify.mark_read(user=user)
        else:
            wanted = set(request.POST.getlist("kinds"))
            for kind in NoticeKind.values:
                if kind in wanted:
                    notify.opt_in(user_id=user.pk, kind=kind)
                else:
                    notify.opt_out(user_id=user.pk, kind=kind)
            messages.success(request, "Your notification settings are saved.")
        return redirect("notifications")
    off = set(user.notice_opt_outs.values_list("kind", flat=True))
    page = Paginator(Notification.objects.filter(user=user), 30).get_page(request.GET.get("page"))
    kinds = [(k, label, k not in off) for k, label in NoticeKind.choices]
    return render(request, "notifications/inbox.html", {"page": page, "kinds": kinds})


@csrf_exempt  # mail clients post the one-click unsubscribe without our cookie; the token is the key
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    """The link in every email: no sign-in needed, the signed token names user and kind. A POST
    (the button, or a mail client's one-click List-Unsubscribe-Post) turns the kind off."""
    named = notify.unsubscribe_read(token)
    if named is None:
        return render(request, "notifications/unsubscribe.html", {"bad": True}, status=404)
    user_id, kind = named
    done = False
    if request.method == "POST":
        notify.opt_out(user_id=user_id, kind=kind)
        done = True
    return render(
        request,
        "notifications/unsubscribe.html",
        {"kind": NoticeKind(kind).label, "done": done},
    )


class _PasswordChange(auth.PasswordChangeView):
    template_name = "affiliates/password_change.html"

    def get_success_url(self) -> str:
        messages.success(self.request, "Your password was changed.")
        return reverse("affiliate-profile")


password_change = affiliate_required(private(_PasswordChange.as_view()))


@affiliate_required
@private
def two_factor_page(request: HttpRequest) -> HttpResponse:
    """Turn the one-time code for the affiliate's login on (scan, then confirm with a code) or
    off (password and a current code)."""
    affiliate, user = request.affiliate, request.user
    form = TwoFactorForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        code = form.cleaned_data["otp_token"]
        try:
            if affiliate.two_factor:
                twofactor.totp_device(user, code)
                twofactor.turn_off(affiliate=affiliate)
                messages.success(request, "Your login no longer asks for a one-time code.")
            else:
                device = twofactor.turn_on(affiliate=affiliate, token=code)
                otp_login(request, device)  # this session gave the code
                messages.success(request, "From now on your login asks for a one-time code.")
            return redirect("affiliate-profile")
        except ValidationError as exc:
            form.add_error("otp_token", exc)
    device = None if affiliate.two_factor else twofactor.setup_device(user)
    return render(
        request,
        "affiliates/two_factor.html",
        {
            "form": form,
            "device": device,
            "qr": twofactor.qr_svg(device) if device else "",
            "secret": b32encode(device.bin_key).decode() if device else "",
        },
    )
