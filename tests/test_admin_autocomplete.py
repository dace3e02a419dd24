"""Every admin form with a searchable (autocomplete) select: a value that is no id at all, as a
hand-made request or a stale form sends, is the form's "Select a valid choice", never a 500.
(Django's own widget raised ValueError redrawing such a form: found by the fuzzed cap form.)"""

import pytest
from django.contrib import admin
from django.urls import reverse

pytestmark = pytest.mark.django_db

WITH_AUTOCOMPLETE = sorted(
    (
        (model._meta.app_label, model._meta.model_name, field)
        for model, model_admin in admin.site._registry.items()
        for field in model_admin.autocomplete_fields
    ),
)


def test_there_are_such_forms():
    assert len(WITH_AUTOCOMPLETE) >= 10


@pytest.mark.parametrize(("app", "model", "field"), WITH_AUTOCOMPLETE)
def test_a_value_that_is_no_id_is_a_form_error(manager_client, app, model, field):
    answer = manager_client.post(reverse(f"admin:{app}_{model}_add"), {field: "x"})

    assert answer.status_code in (200, 403), answer.status_code
    if answer.status_code == 200:
        assert "errornote" in answer.content.decode()
