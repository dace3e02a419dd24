"""The REST API's shared plumbing, used by every app's API: URL ids, filters, error shapes and
the schema class (``PortalAutoSchema``), which documents the error answers DRF gives, so that
/api/schema/ describes every status an endpoint can return.
"""

from datetime import UTC, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from django.db.models import Model
from django_filters import rest_framework as filters
from django_filters.fields import IsoDateTimeField
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema_field,
)
from rest_framework import serializers
from rest_framework.permissions import AllowAny

CURRENCY = RegexValidator(r"^[A-Z]{3}\Z", "An ISO 4217 code in capitals, e.g. EUR.")


class ErrorSerializer(serializers.Serializer):
    """An error that is not about one field: not signed in, not allowed, not found, too many."""

    detail = serializers.CharField()


class UpdateFieldsMixin:
    # Save only the fields a request changed: a concurrent edit of another field survives.
    # (A comment, not a docstring: the schema would show it as every serializer's description.)

    def update(self, instance: Model, validated_data: dict[str, Any]) -> Model:
        for name, value in validated_data.items():
            setattr(instance, name, value)
        if validated_data:
            instance.save(update_fields=list(validated_data))
        return instance


def model_clean(instance: Model) -> None:
    """The model's own ``clean()`` as a 400, for the rules DRF does not run by itself."""
    try:
        instance.clean()
    except DjangoValidationError as exc:
        raise serializers.ValidationError(serializers.as_serializer_error(exc)) from exc


# An id in a URL is anything up to the next slash, so that a malformed one gets DRF's 404 like a
# missing one (the router adds no format suffixes: the API speaks JSON only).
ID = r"[^/]+"


VALIDATION_ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT,
    description='Bad input: field name to a list of messages, or {"detail": "..."}.',
)


class PortalAutoSchema(AutoSchema):
    """drf-spectacular's schema plus the error answers DRF gives each kind of endpoint."""

    def _get_response_bodies(self, direction: str = "response") -> dict[str, Any]:
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code, body in self._error_responses().items():
            if code not in responses:
                responses[code] = self._get_response_for_code(body, code, direction=direction)
        return responses

    def _error_responses(self) -> dict[str, Any]:
        view = self.view
        errors: dict[str, Any] = {}
        writes = self.method in ("POST", "PUT", "PATCH")
        listing = self.method == "GET" and self._is_list_view()
        filtered = getattr(view, "filterset_class", None) or getattr(view, "filterset_fields", None)
        if writes or (listing and filtered):
            errors["400"] = VALIDATION_ERROR
        protected = any(p is not AllowAny for p in view.permission_classes)
        if protected and view.authentication_classes:
            errors["401"] = OpenApiResponse(ErrorSerializer, description="Not signed in.")
        if protected:
            errors["403"] = OpenApiResponse(
                ErrorSerializer, description="Not a manager, or not an active affiliate."
            )
        if "{" in self.path or listing:
            errors["404"] = OpenApiResponse(
                ErrorSerializer, description="No such object of yours (or no such page)."
            )
        if writes:
            errors["415"] = OpenApiResponse(
                ErrorSerializer, description="A body that is not JSON, a form or multipart."
            )
        if view.throttle_classes:
            errors["429"] = OpenApiResponse(ErrorSerializer, description="Too many requests.")
        return errors


@extend_schema_field(OpenApiTypes.INT)
class IdFilter(filters.NumberFilter):
    """An id: a whole number (no query to check it exists, so nothing is told about others')."""

    field_class = forms.IntegerField

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min_value", 1)
        kwargs.setdefault("max_value", 2**63 - 1)
        super().__init__(*args, **kwargs)


class InstantField(IsoDateTimeField):
    """An ISO 8601 instant the database can hold (in UTC), or a 400."""

    def to_python(self, value: Any) -> datetime | None:
        instant = super().to_python(value)
        if instant is None:
            return None
        try:
            # In UTC: PostgreSQL takes offsets up to 15:59 only, ISO 8601 up to 23:59.
            return instant.astimezone(UTC)
        except OverflowError as exc:
            raise forms.ValidationError("Date and time out of range.") from exc


class InstantFilter(filters.IsoDateTimeFilter):
    field_class = InstantField
