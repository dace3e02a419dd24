from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from tqdm import tqdm

from attribution.rollups import keep


class Command(BaseCommand):
    help = "Recompute the dashboards' daily and hourly rollups for a range of days from raw rows."

    def add_arguments(self, parser):
        parser.add_argument("--since", type=date.fromisoformat, help="first day (YYYY-MM-DD)")
        parser.add_argument("--until", type=date.fromisoformat, help="last day (default today)")
        parser.add_argument("--days", type=int, default=None, help="or: the last N days")

    def handle(self, *args, since, until, days, **options) -> None:
        today = timezone.now().date()
        until = until or today + timedelta(days=1)  # tomorrow: zones ahead of UTC
        if days is not None:
            since = today - timedelta(days=days)
        if since is None:
            raise CommandError("give --since YYYY-MM-DD or --days N")
        if since > until:
            raise CommandError(f"--since {since} is after --until {until}")
        total = (until - since).days + 1
        with tqdm(total=total, desc="rebuilding rollups", unit="day", disable=None) as bar:
            totals = keep.rebuild(since=since, until=until, progress=bar.update)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt {totals['days']} day(s): {totals['clicks']} clicks counted."
            )
        )
