from collections import Counter
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from affiliates.models import Campaign
from attribution.models import Conversion
from attribution.processing import amend
from attribution.rollups import keep


class Command(BaseCommand):
    help = (
        "Re-run attribution for conversions since a date (after a change of lookback, fraud "
        "policy or SKAN mapping) and print what changed hands."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", required=True, type=datetime.fromisoformat)
        parser.add_argument("--campaign", type=int, help="only conversions of this campaign id")
        parser.add_argument("--dry-run", action="store_true", help="report, change nothing")

    def handle(self, *args, since: datetime, campaign: int | None, dry_run: bool, **options):
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        conversions = Conversion.objects.filter(occurred_at__gte=since, is_winner=True)
        if campaign is not None:
            if not Campaign.objects.filter(pk=campaign).exists():
                raise CommandError(f"no campaign with id {campaign}")
            conversions = conversions.filter(campaign_id=campaign)
        ids = list(conversions.order_by("occurred_at", "pk").values_list("pk", flat=True))
        moves: Counter = Counter()
        changed = 0
        for pk in tqdm(ids, desc="reattributing", unit="conversion", disable=None):
            with transaction.atomic(), keep.deferred():
                conversion = Conversion.objects.select_for_update().get(pk=pk)
                change = amend.conversion_reattribute(conversion=conversion)
                if change is None:
                    continue
                changed += 1
                moves[
                    (
                        change.old_affiliate_id or "organic",
                        change.conversion.affiliate_id or "organic",
                        f"{change.old_status}->{change.conversion.status}",
                    )
                ] += 1
                if dry_run:
                    transaction.set_rollback(True)
        verb = "would change" if dry_run else "changed"
        self.stdout.write(f"{len(ids)} conversion(s) checked, {changed} {verb}.")
        for (old, new, status), count in moves.most_common():
            self.stdout.write(f"  affiliate {old} -> {new} ({status}): {count}")
