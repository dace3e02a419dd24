from celery import shared_task
from django.db import InterfaceError, OperationalError
from django.utils import timezone

from . import cohort_facts, ledger, runs


@shared_task(name="payouts.sweep_ledger", ignore_result=True)
def sweep_ledger() -> int:
    """Sync conversions whose ledger entries are behind (beat, every minute)."""
    return ledger.ledger_sweep()


@shared_task(name="payouts.refresh_cohort_facts", ignore_result=True)
def refresh_cohort_facts() -> int:
    """Bring stale players' cohort facts up to date (beat, every minute), so that a report
    request rarely has any to do."""
    return cohort_facts.refresh()


@shared_task(name="payouts.close_previous_month", ignore_result=True)
def close_previous_month() -> dict:
    """Close last month's RevShare and retroactive tiers (beat, daily; a no-op once done).

    Runs from the 3rd on, so that late postbacks of the month's last days are in.
    """
    today = timezone.now().date()
    if today.day < 3:
        return {}
    period = (today.replace(day=1) - timezone.timedelta(days=1)).replace(day=1)
    return ledger.month_close(period=period)


@shared_task(
    name="payouts.execute_run",
    ignore_result=True,
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=5,
    max_retries=5,
)
def execute_run(run_id: int) -> None:
    """Work out a payout run's payouts; re-running it after a crash pays nobody twice."""
    runs.payout_run_execute(run_id=run_id)
