"""``manage.py seed_demo``: the demo program, with the portal's own address in what it prints."""

import json
from io import StringIO
from urllib.parse import quote

import pytest
from django.core.management import call_command

from affiliates.models import Campaign

pytestmark = pytest.mark.django_db


def test_the_demo_names_the_address_the_portal_answers_on():
    # when the demo is seeded for a portal on another host and port
    base = "http://portal.test:8123"
    out = StringIO()
    call_command("seed_demo", "--clicks", "0", "--json", "--base-url", base, stdout=out)
    demo = json.loads(out.getvalue())
    again = StringIO()
    call_command("seed_demo", "--clicks", "0", "--base-url", f"{base}/", stdout=again)

    # then the postback URLs it lists (Apple's too), the Adjust callback it stores and the link
    # it suggests trying are on that address
    assert demo["postback_sources"]
    assert all(s["url"].startswith(f"{base}/") for s in demo["postback_sources"])
    callback = quote(f"{base}/postbacks/adjust/", safe="")
    assert Campaign.objects.filter(android_url__contains=callback).exists()
    assert f"curl -sI {base}/c/" in again.getvalue()
