"""Admin pieces with no domain in them."""

from django.contrib import admin
from django.contrib.admin import widgets
from django.core.exceptions import ValidationError
from django.http import HttpRequest


class ReadOnlyAdmin(admin.ModelAdmin):
    """Evidence and records: managers read them, nobody adds, edits or deletes them here."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


class _AutocompleteSelect(widgets.AutocompleteSelect):
    """Django's autocomplete widget, minus its 500 on a value that is no key at all.

    Redrawing a form whose select got a value its model's key cannot take (``"x"`` for an id)
    filters the choices by it and raises ValueError; the field's own error ("Select a valid
    choice") is what the manager should see, with nothing selected.
    """

    def optgroups(self, name, value, attr=None):
        opts = self.field.remote_field.model._meta
        name = getattr(self.field.remote_field, "field_name", None)
        target = opts.get_field(name) if name else opts.pk
        kept = []
        for item in value:
            try:
                target.to_python(item)
            except (ValidationError, TypeError, ValueError):
                continue
            kept.append(item)
        return super().optgroups(name, kept, attr)


class SafeAutocomplete:
    """Mix into a ModelAdmin or inline with ``autocomplete_fields``: the widget above."""

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = _AutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
