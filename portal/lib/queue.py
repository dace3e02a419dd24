"""Hand work to a worker by the task's stable name, never by importing the task.

Domain code (ingestion, processing, outbound) sits below the task modules that call it, so it must
not import them: a task is looked up in the Celery app's registry by name when it is published
(Zulip's ``queue_event_on_commit``). ``task_always_eager`` still runs it in the caller, as tests
and the embedded default expect. ``TaskName`` lists every name domain code may publish; a test
checks that each is registered.
"""

from typing import Any, Literal, get_args

from celery import current_app
from django.db import transaction

TaskName = Literal[
    "attribution.process_postbacks",
    "attribution.dispatch_outbound",
    "attribution.send_outbound",
    "affiliates.send_notification_email",
]
TASK_NAMES: tuple[str, ...] = get_args(TaskName)


def task(name: TaskName) -> Any:
    """The registered task called ``name``; a KeyError names a task that is not registered.

    A web process imports no task module, so the first call has Celery's loader import them
    (``autodiscover_tasks`` waits for that signal, which only a worker sends at start).
    """
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    return current_app.tasks[name]


def publish(name: TaskName, *args: Any, countdown: float | None = None, **options: Any) -> None:
    """Publish ``name(*args)`` now (``producer=`` reuses a pooled producer)."""
    if countdown is not None:
        options["countdown"] = countdown
    task(name).apply_async(args, **options)


def publish_on_commit(name: TaskName, *args: Any, countdown: float | None = None) -> None:
    """Publish ``name(*args)`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: publish(name, *args, countdown=countdown))


def producer() -> Any:
    """A producer from the app's pool, with its kept broker connection (a context manager)."""
    return current_app.producer_or_acquire()
