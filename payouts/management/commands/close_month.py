from datetime import date

from django.core.management.base import BaseCommand, CommandError

from payouts import ledger


class Command(BaseCommand):
    help = "Close a month: retroactive tier top-ups and RevShare (safe to run again)."

    def add_arguments(self, parser):
        parser.add_argument("month", help="YYYY-MM")

    def handle(self, *args, month: str, **options) -> None:
        try:
            period = date.fromisoformat(f"{month}-01")
        except ValueError:
            raise CommandError(f"{month!r} is not a month (YYYY-MM)") from None
        try:
            made = ledger.month_close(period=period)
        except ledger.MonthOpen as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(
            self.style.SUCCESS(
                f"{month}: {made['tiers']} tier top-up(s), {made['revshare']} RevShare entries, "
                f"{made['ngr']} NGR statement(s)."
            )
        )
