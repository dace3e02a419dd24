"""A real Celery worker process over the configured broker runs what the portal enqueues."""

import pytest

from attribution.models import Postback, PostbackEvent
from tests.attribution.payloads import APPSFLYER_INSTALL
from tests.factories import PostbackSourceFactory
from tests.processes import celery_worker, purge_queue, wait_until

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def test_a_real_worker_processes_what_a_postback_enqueued(client, tmp_path):
    # given a worker on the broker this run is configured with
    purge_queue()
    source = PostbackSourceFactory(kind="appsflyer")
    with celery_worker(tmp_path):
        # when a postback arrives (the view enqueues the task after commit)
        response = client.get(f"/postbacks/appsflyer/{source.token}/?{APPSFLYER_INSTALL}")
        assert response.status_code == 200
        postback = Postback.objects.get(pk=response.json()["id"])

        # then the worker turns it into its normalised event
        assert wait_until(
            lambda: Postback.objects.get(pk=postback.pk).status == Postback.Status.PROCESSED
        )
    event = PostbackEvent.objects.get(postback=postback)
    assert event.kind == "install"
    assert event.mmp_device_id == "1698811503838-6471005703857226630"
