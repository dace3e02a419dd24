import calendar
from datetime import date

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from payouts import runs
from payouts.models import PayoutRun


class Command(BaseCommand):
    help = "Create and work out a payout run for a month (or a period); prints the payouts made."

    def add_arguments(self, parser):
        parser.add_argument("--month", help="YYYY-MM (the default period)")
        parser.add_argument("--start", type=date.fromisoformat)
        parser.add_argument("--end", type=date.fromisoformat)
        parser.add_argument("--resume", type=int, help="re-run an interrupted run by id")
        parser.add_argument(
            "--confirm-open-months",
            action="store_true",
            help="create the run although RevShare is not closed for a month of it",
        )

    def handle(self, *args, month, start, end, resume, confirm_open_months, **options) -> None:
        if resume is not None:
            run = PayoutRun.objects.filter(pk=resume).first()
            if run is None:
                raise CommandError(f"no payout run {resume}")
        else:
            if month:
                try:
                    year, number = (int(p) for p in month.split("-"))
                    start = date(year, number, 1)
                except (ValueError, OverflowError):
                    raise CommandError(f"{month!r} is not a month (YYYY-MM)") from None
                end = date(year, number, calendar.monthrange(year, number)[1])
            if not (start and end):
                raise CommandError("give --month YYYY-MM, or --start and --end")
            try:
                run = runs.payout_run_create(
                    period_start=start,
                    period_end=end,
                    open_months_confirmed=confirm_open_months,
                )
            except runs.MonthsOpen as exc:
                raise CommandError(f"{exc} with --confirm-open-months") from None
            except runs.PayoutError as exc:
                raise CommandError(str(exc)) from None
        with tqdm(desc="payout run", unit="affiliate", disable=None) as bar:

            def progress(n: int) -> None:
                if bar.total is None:
                    bar.total = PayoutRun.objects.get(pk=run.pk).total_affiliates
                bar.update(n)

            run = runs.payout_run_execute(run_id=run.pk, progress=progress)
        payouts = run.payouts.all()
        self.stdout.write(
            self.style.SUCCESS(
                f"Run {run.pk} ({run.period_start} .. {run.period_end}): "
                f"{payouts.count()} payout(s) of {run.total_affiliates} affiliate(s) with a "
                f"balance; status {run.status}."
            )
        )
