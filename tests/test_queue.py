"""Domain code hands work to workers by task name (portal.lib.queue), never by importing tasks."""

import os
import subprocess
import sys

import pytest
from django.db import transaction

from attribution.models import OutboundDelivery, OutboundEndpoint
from portal.celery import app
from portal.lib import queue
from tests.factories import AffiliateFactory


def test_every_name_domain_code_may_publish_is_a_registered_task():
    app.loader.import_default_modules()

    missing = [name for name in queue.TASK_NAMES if name not in app.tasks]

    assert queue.TASK_NAMES
    assert missing == []


def test_a_process_that_imported_no_task_module_still_finds_the_task_by_name():
    # A web process imports no tasks module; the dispatcher must find the task all the same.
    code = (
        "import django, sys; django.setup(); "
        "assert 'attribution.tasks' not in sys.modules; "
        "from portal.lib import queue; "
        "print(queue.task('attribution.process_postbacks').name)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"},
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "attribution.process_postbacks"


def test_an_unknown_name_is_an_error_not_a_silent_drop():
    with pytest.raises(KeyError):
        queue.task("attribution.no_such_task")  # type: ignore[arg-type]


@pytest.mark.django_db(transaction=True)
def test_publish_on_commit_runs_the_task_after_the_commit_and_not_on_rollback():
    # given a test endpoint whose task logs a delivery row (eager: it runs in this process)
    endpoint = OutboundEndpoint.objects.create(
        affiliate=AffiliateFactory(), url_template="http://127.0.0.1:9/"
    )
    app.conf.task_always_eager = True
    try:
        # when the publish happens inside a transaction that rolls back
        with pytest.raises(RuntimeError), transaction.atomic():
            queue.publish_on_commit("attribution.send_outbound", endpoint.pk, None, "test", 1)
            raise RuntimeError("rolled back")
        # then nothing ran
        assert not OutboundDelivery.objects.exists()

        # when it happens inside one that commits
        with transaction.atomic():
            queue.publish_on_commit("attribution.send_outbound", endpoint.pk, None, "test", 1)
            assert not OutboundDelivery.objects.exists()  # not before the commit
        # then the task ran once, after it
        assert OutboundDelivery.objects.filter(endpoint=endpoint, event="test").count() == 1
    finally:
        app.conf.task_always_eager = False
