"""The OpenAPI schema tells the truth: schemathesis fuzzes every operation over the WSGI app, as a
manager and as an affiliate, and every answer must be documented, match its schema and never be
a 5xx."""

from contextlib import contextmanager

import pytest
import schemathesis
from django.contrib.staticfiles import finders
from django.core import signals
from django.core.management import call_command
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from rest_framework.authtoken.models import Token
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from payouts.models import CommissionPlan
from portal.wsgi import application
from tests.payouts.helpers import plan

pytestmark = pytest.mark.django_db

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Per operation and role: enough to walk every documented answer, small enough for < 60 s.
EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 6}

# The operations, read from the schema generator itself, so that each gets its own test id.
OPERATIONS = sorted(
    (method.upper(), path)
    for path, methods in SchemaGenerator().get_schema(request=None, public=True)["paths"].items()
    for method in methods
    if method in ("get", "post", "put", "patch", "delete")
)


@contextmanager
def keeping_the_test_connection():
    """As Django's test client does: the request signals must not close the test's connection
    (and with it the transaction every test runs in). The test client connects them again after
    each of its own requests, so this wraps the WSGI calls themselves."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def test_the_schema_is_valid_openapi_3_without_warnings(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )

    assert (tmp_path / "schema.yml").read_text().startswith("openapi: 3.")


def test_the_swagger_ui_is_served_from_the_sidecar_package(client):
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn.jsdelivr.net" not in html

    # Collected with the rest of the static files (collectstatic): no CDN at run time.
    assert finders.find("drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js")


def test_the_schema_is_openapi_3(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")

    assert schema.status_code == 200
    assert schema.json()["openapi"].startswith("3.")
    assert "/api/v1/stats/" in schema.json()["paths"]


@pytest.fixture
def schema(settings):
    # schemathesis' WSGI client calls the app as host "localhost".
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "localhost"]
    with keeping_the_test_connection():
        return schemathesis.openapi.from_wsgi("/api/schema/", application)


@pytest.fixture
def existing(world, campaign) -> dict[str, int]:
    """An id that exists, per collection: alice's rows, her campaign and a plan."""
    plan(campaign, name="Standard CPA", cpa={"install": "2.00"}, tiers=[(10, "3.00")])
    return {
        "affiliates": world.alice.pk,
        "campaigns": campaign.pk,
        "offers": campaign.pk,
        "links": world.link.pk,
        "conversions": world.conversion.pk,
        "payouts": world.payout.pk,
        "payout-runs": world.payout.run_id,
        "plans": CommissionPlan.objects.get(name="Standard CPA").pk,
    }


def fuzz(operation, headers: dict[str, str], mode: GenerationMode, **fixed) -> None:
    @given(case=operation.as_strategy(mode, **fixed))
    @hypothesis_settings(
        max_examples=EXAMPLES[mode],
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def run(case) -> None:
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.parametrize("role", ["manager", "affiliate"])
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_every_answer_is_documented_and_never_a_server_error(
    schema, existing, manager, world, role, method, path
):
    user = manager if role == "manager" else world.alice.user
    headers = {"Authorization": f"Token {Token.objects.get_or_create(user=user)[0].key}"}
    operation = schema[path][method]

    with keeping_the_test_connection():
        # Valid requests, then requests with something invalid in their query or body (a 4xx,
        # documented). A malformed id alone is left to the positive runs' random ids.
        fuzz(operation, headers, GenerationMode.POSITIVE)
        if len(operation.query) or len(operation.body):
            fuzz(operation, headers, GenerationMode.NEGATIVE)
        if "{id}" in path:
            # Random ids almost never exist: also fuzz the rest of the request on a real one.
            collection = path.removeprefix("/api/v1/").split("/")[0]
            real = {"id": existing[collection]}
            fuzz(operation, headers, GenerationMode.POSITIVE, path_parameters=real)
