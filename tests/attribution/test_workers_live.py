"""Real worker processes: several at once on the same postbacks, and one killed mid-way."""

import contextlib
import os
import signal
from datetime import timedelta

import pytest

from attribution.models import Conversion, Postback, PostbackEvent
from attribution.tasks import process_postback, sweep_postbacks
from tests.attribution.test_crediting import T0, click
from tests.processes import celery_worker, process_env, purge_queue, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def _stored_postbacks(client, alice, charlie, campaign, appsflyer, branch, *, installs: int) -> int:
    """Installs claimed through two MMPs and by two affiliates, stored but not yet processed."""
    sent = 0
    for n in range(installs):
        idfa = f"00000000-0000-4000-8000-{n + 1:012d}"
        early = click(
            client,
            charlie,
            campaign,
            at=T0 + timedelta(minutes=n),
            idfa=idfa,
            ip=f"198.18.{n // 200}.{n % 200 + 1}",
        )
        late = click(
            client,
            alice,
            campaign,
            at=T0 + timedelta(minutes=n, seconds=30),
            idfa=idfa,
            ip=f"198.19.{n // 200}.{n % 200 + 1}",
        )
        installed = int((T0 + timedelta(minutes=n, hours=1)).timestamp())
        for afid, click_id in ((f"af-{n}", early.click_id), (f"af-{n}-b", late.click_id)):
            client.get(
                f"/postbacks/appsflyer/{appsflyer.token}/?appsflyer_id={afid}&idfa={idfa}"
                f"&clickid={click_id}&install_unix_ts={installed}&platform=ios&app_id=id1234567890"
            )
            sent += 1
        client.post(
            f"/postbacks/branch/{branch.token}/",
            {
                "name": "INSTALL",
                "id": str(9000 + n),
                "timestamp": installed * 1000,
                "user_data": {"idfa": idfa, "os": "IOS"},
            },
            content_type="application/json",
        )
        sent += 1
    return sent


def _assert_exactly_once(installs: int, alice) -> None:
    assert not Postback.objects.exclude(status=Postback.Status.PROCESSED).exists()
    assert PostbackEvent.objects.count() == Postback.objects.count()
    assert Conversion.objects.count() == PostbackEvent.objects.count()
    winners = Conversion.objects.filter(is_winner=True)
    assert winners.count() == installs
    assert set(winners.values_list("affiliate_id", flat=True)) == {alice.pk}  # the last click
    assert Conversion.objects.filter(reason="duplicate_claim").count() == 2 * installs


def test_several_workers_on_the_same_postbacks_make_no_conversion_twice(
    client, alice, charlie, campaign, appsflyer, branch, tmp_path, settings
):
    # given stored postbacks, each queued three times over (the sweep running thrice)
    purge_queue()
    installs = 25
    sent = _stored_postbacks(client, alice, charlie, campaign, appsflyer, branch, installs=installs)
    purge_queue()  # what the requests enqueued: the sweeps below queue every row instead
    settings.POSTBACK_SWEEP_GRACE_SECONDS = 0
    for _ in range(3):
        assert sweep_postbacks() == sent

    # when three worker processes, two children each, take them at once
    with celery_worker(tmp_path), celery_worker(tmp_path), celery_worker(tmp_path):
        assert wait_until(
            lambda: not Postback.objects.filter(status=Postback.Status.RECEIVED).exists(),
            timeout=120,
        )

    # then every postback was processed once and every claim has one winner
    _assert_exactly_once(installs, alice)


def test_a_worker_killed_mid_batch_leaves_nothing_half_done(
    client, alice, charlie, campaign, appsflyer, branch, tmp_path, settings
):
    # given many stored postbacks queued for one worker
    purge_queue()
    installs = 60
    sent = _stored_postbacks(client, alice, charlie, campaign, appsflyer, branch, installs=installs)
    purge_queue()
    settings.POSTBACK_SWEEP_GRACE_SECONDS = 0
    for postback_id in Postback.objects.order_by("pk").values_list("pk", flat=True):
        process_postback.delay(postback_id)

    # when it is killed with SIGKILL part-way through, batches of 15 rows at a time
    small_batches = process_env(POSTBACK_BATCH="15")
    with celery_worker(tmp_path, concurrency=1, env=small_batches) as worker:
        assert wait_until(
            lambda: Postback.objects.filter(status=Postback.Status.PROCESSED).count() >= 10,
            timeout=120,
            interval=0.02,
        )
        _kill_tree(worker.pid)
        worker.wait()
    done = Postback.objects.filter(status=Postback.Status.PROCESSED).count()
    assert done < sent, "the worker finished before it could be killed; raise the volume"
    assert PostbackEvent.objects.count() == done  # nothing half done: no event without its row
    assert Conversion.objects.count() == done

    # then after a restart (and the sweep) every postback is processed exactly once
    purge_queue()
    with celery_worker(tmp_path):
        sweep_postbacks()
        assert wait_until(
            lambda: not Postback.objects.filter(status=Postback.Status.RECEIVED).exists(),
            timeout=120,
        )
    _assert_exactly_once(installs, alice)


def _kill_tree(pid: int) -> None:
    """SIGKILL a worker and its pool children, as an out-of-memory killer would."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        children.append(int(entry))
            except (OSError, ValueError, IndexError):
                continue
    for target in (pid, *children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(target, signal.SIGKILL)
