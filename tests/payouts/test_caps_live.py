"""Caps under concurrency: real Celery workers on a burst of FTDs never credit past a cap.

The expected figures come from the caps alone, whatever order the workers take the burst in:
a daily cap of 10 FTDs held past it leaves exactly 10 paid at 100 EUR and the rest waiting for a
manager; a monthly payout cap of 1,000 EUR at 75 EUR an FTD pays 13 x 75 = 975, then the 25 EUR
left, then nothing.
"""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db.models import Sum

from attribution.models import Click, Conversion, Postback
from attribution.tasks import sweep_postbacks
from payouts.models import Cap, CapUsage, LedgerEntry
from tests.attribution.test_crediting import T0, click
from tests.factories import AffiliateFactory, CampaignFactory
from tests.payouts.helpers import plan
from tests.processes import celery_worker, process_env, purge_queue, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

BURST = 30  # FTDs per campaign, each of an affiliate of its own


def test_workers_on_a_burst_never_credit_past_a_cap(client, campaign, s2s, tmp_path, settings):
    # given two campaigns: one with a daily cap of 10 FTDs (held past it), one with a monthly
    # payout cap of 1,000 EUR (not paid past it)
    held = campaign
    budget = CampaignFactory(brand=campaign.brand, web_url="https://casino.example/")
    plan(held, name="A", cpa={"ftd": "100.00"})
    plan(budget, name="B", cpa={"ftd": "75.00"})
    Cap.objects.create(campaign=held, period="day", conversion_type="ftd", limit=10, action="hold")
    Cap.objects.create(campaign=budget, period="month", metric="payout", limit="1000.00",
                       currency="EUR", action="unpaid")  # fmt: skip

    # and a burst of FTDs stored, not yet processed, each of another affiliate: their FTD
    # turns (one affiliate's accruals take turns) do not line the workers up, only the caps can
    purge_queue()
    affiliates = iter(AffiliateFactory.create_batch(2 * BURST))
    for n in range(BURST):
        for offer in (held, budget):
            affiliate = next(affiliates)
            made = click(client, affiliate, offer, at=T0 + timedelta(seconds=n))
            Click.objects.filter(pk=made.pk).update(platform="web")
            query = {"event": "ftd", "txid": f"{offer.pk}-{n}", "player_id": f"{offer.pk}-p{n}",
                     "amount": "20.00", "currency": "EUR", "click_id": made.click_id,
                     "time": int((T0 + timedelta(minutes=5, seconds=n)).timestamp())}  # fmt: skip
            assert client.get(f"/postbacks/s2s/{s2s.token}/", query).status_code == 200
    purge_queue()
    settings.POSTBACK_SWEEP_GRACE_SECONDS = 0
    assert sweep_postbacks() == 2 * BURST

    # when three worker processes (two children each) take them in batches of 4
    small = process_env(POSTBACK_BATCH="4")
    with celery_worker(tmp_path, env=small), celery_worker(tmp_path, env=small), \
            celery_worker(tmp_path, env=small):  # fmt: skip
        assert wait_until(
            lambda: not Postback.objects.exclude(status=Postback.Status.PROCESSED).exists(),
            timeout=180,
        )

    # then the held campaign paid exactly 10 FTDs and holds the other 20 for review
    cpa = LedgerEntry.objects.filter(kind="cpa")
    held_conversions = Conversion.objects.filter(campaign=held, is_winner=True)
    assert held_conversions.count() == BURST
    assert held_conversions.filter(status="approved", reason="ok").count() == 10
    assert held_conversions.filter(status="pending", reason="over_cap").count() == BURST - 10
    approved = cpa.filter(conversion__campaign=held, status="approved")
    assert approved.aggregate(s=Sum("original_amount"))["s"] == Decimal("1000.00")
    assert CapUsage.objects.get(cap__campaign=held).conversions == 10

    # and the budget campaign paid exactly its 1,000 EUR: 13 x 75, then the 25 left, then 0
    amounts = sorted(
        cpa.filter(conversion__campaign=budget).values_list("original_amount", flat=True),
        reverse=True,
    )
    assert amounts == [Decimal("75.00")] * 13 + [Decimal("25.00")] + [Decimal("0.00")] * 16
    assert CapUsage.objects.get(cap__campaign=budget).amount == Decimal("1000.00")
