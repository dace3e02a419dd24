"""`reattribute`: after a configuration change, conversions change hands and the summary says so."""

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command

from affiliates.models import AuditEvent, Campaign
from attribution.models import Conversion, DailyRollup, FraudPolicy
from tests.attribution.test_crediting import T0, af_install, click

pytestmark = pytest.mark.django_db


def run(*args: str) -> str:
    out = StringIO()
    call_command("reattribute", *args, stdout=out)
    return out.getvalue()


def test_a_longer_lookback_credits_an_install_that_was_rejected(client, alice, campaign, appsflyer):
    FraudPolicy.objects.create(campaign=campaign, outside_lookback_action="reject")
    made = click(client, alice, campaign, at=T0)
    late = af_install(client, appsflyer, at=T0 + timedelta(days=9), click_id=made.click_id)
    assert (late.status, late.reason) == ("rejected", "outside_lookback")

    Campaign.objects.filter(pk=campaign.pk).update(click_lookback_days=14)
    summary = run("--since", "2026-11-01", "--campaign", str(campaign.pk))

    late.refresh_from_db()
    assert (late.status, late.reason, late.affiliate) == ("approved", "ok", alice)
    assert "1 conversion(s) checked, 1 changed." in summary
    assert f"affiliate {alice.pk} -> {alice.pk} (rejected->approved): 1" in summary
    row = DailyRollup.objects.get(affiliate_id=alice.pk)
    assert (row.installs, row.rejected) == (1, 0)
    assert AuditEvent.objects.filter(object_id=str(late.pk), field="attribution").exists()


def test_a_dry_run_changes_nothing(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    conversion = af_install(
        client, appsflyer, at=T0 + timedelta(seconds=30), click_id=made.click_id
    )
    FraudPolicy.objects.create(campaign=campaign, min_ctit_seconds=60)

    summary = run("--since", "2026-11-01", "--dry-run")

    assert "1 would change" in summary
    conversion.refresh_from_db()
    assert conversion.status == "approved"
    run("--since", "2026-11-01")
    conversion.refresh_from_db()
    assert (conversion.status, conversion.reason) == ("pending", "low_ctit")


def test_nothing_changes_when_nothing_was_reconfigured(client, alice, campaign, appsflyer):
    made = click(client, alice, campaign, at=T0)
    af_install(client, appsflyer, at=T0 + timedelta(hours=1), click_id=made.click_id)
    assert "1 conversion(s) checked, 0 changed." in run("--since", "2026-11-01")
    assert Conversion.objects.get().status == "approved"
