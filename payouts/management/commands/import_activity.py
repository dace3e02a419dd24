from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from payouts import activity


class Command(BaseCommand):
    help = (
        "Load the operator's player activity CSV files (the API's columns). Every row of every "
        "file is checked first; if any is bad nothing is stored. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", type=Path)
        parser.add_argument("--brand", type=int, help="The brand of rows with no brand column")
        parser.add_argument("--dry-run", action="store_true", help="Check only; store nothing")

    def handle(self, *args, files: list[Path], brand: int | None, dry_run: bool, **options):
        checked: list[tuple[Path, activity.Checked]] = []
        bad = 0
        for path in files:
            try:
                with path.open(encoding="utf-8-sig", newline="") as handle:
                    raw, warnings = activity.activity_read_csv(handle)
            except (OSError, UnicodeDecodeError) as exc:
                raise CommandError(f"{path}: {exc}") from exc
            for warning in warnings:
                self.stderr.write(f"{path}: {warning}")
            result = activity.activity_check(raw, brand_id=brand)
            for error in result.errors:
                # Line numbers as an editor shows them: the header is line 1.
                self.stderr.write(f"{path}:{error.index + 2}: {error.field}: {error.reason}")
            bad += len(result.errors)
            checked.append((path, result))
            self.stdout.write(f"{path}: {len(raw)} rows, {len(result.errors)} error(s)")
        if bad:
            raise CommandError(f"{bad} error(s): nothing was stored.")
        if dry_run:
            self.stdout.write(self.style.SUCCESS("Dry run: every row is good; nothing stored."))
            return
        total = activity.Outcome()
        with transaction.atomic():
            for path, result in checked:
                rows = result.rows
                with tqdm(total=len(rows), desc=path.name, unit="row", file=self.stderr) as bar:
                    for start in range(0, len(rows), activity.MAX_ROWS):
                        part = rows[start : start + activity.MAX_ROWS]
                        done = activity.activity_store(rows=part)
                        total.created += done.created
                        total.revised += done.revised
                        total.unchanged += done.unchanged
                        bar.update(len(part))
        counts = total.as_dict()
        self.stdout.write(
            self.style.SUCCESS(", ".join(f"{n} {what}" for what, n in counts.items()) + ".")
        )
