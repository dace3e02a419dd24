"""Admin > Import a program: upload another platform's CSV export, check it, then import it.

The same service as ``manage.py import_program`` (affiliates.importing): every row checked, all or
nothing, idempotent. Routed in portal/urls.py, before ``admin/``:

    path("admin/import/", admin.site.admin_view(import_program_view), name="admin-import"),
"""

import tempfile
from pathlib import Path

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from .importing import COLUMNS, FILES, program_import

# Who may import: it creates users, affiliates, campaigns, links, clicks and conversions.
REQUIRED_PERMISSIONS = (
    "affiliates.add_affiliate",
    "affiliates.change_affiliate",
    "affiliates.add_campaign",
    "affiliates.add_trackinglink",
    "attribution.add_conversion",
)


class ImportForm(forms.Form):
    affiliates = forms.FileField(required=False, label="affiliates.csv")
    campaigns = forms.FileField(required=False, label="campaigns.csv")
    links = forms.FileField(required=False, label="links.csv")
    clicks = forms.FileField(required=False, label="clicks.csv")
    conversions = forms.FileField(required=False, label="conversions.csv")
    dry_run = forms.BooleanField(
        required=False,
        initial=True,
        label="Dry run",
        help_text="Only check the files and report what would be created, updated or unchanged.",
    )

    def clean(self) -> dict:
        data = super().clean()
        if not any(data.get(name) for name in FILES):
            raise forms.ValidationError("Choose at least one CSV file.")
        return data


def import_program_view(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perms(REQUIRED_PERMISSIONS):
        raise PermissionDenied
    report = None
    form = ImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        with tempfile.TemporaryDirectory(prefix="import-") as folder:
            for name in FILES:
                upload = form.cleaned_data.get(name)
                if upload:
                    with (Path(folder) / f"{name}.csv").open("wb") as handle:
                        for chunk in upload.chunks():
                            handle.write(chunk)
            report = program_import(
                directory=folder,
                dry_run=form.cleaned_data["dry_run"],
                progress=False,
                actor=request.user,
                label="the uploaded files",
            )
    context = {
        **admin.site.each_context(request),
        "title": "Import a program",
        "form": form,
        "report": report,
        "report_text": str(report) if report else "",
        "columns": _columns(),
    }
    return TemplateResponse(request, "admin/affiliates/import.html", context)


def _columns() -> list[tuple[str, str, str]]:
    return [
        (f"{name}.csv", ", ".join(COLUMNS[name][0]), ", ".join(COLUMNS[name][1])) for name in FILES
    ]
