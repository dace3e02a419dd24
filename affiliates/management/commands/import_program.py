"""python manage.py import_program --dir <folder> [--dry-run]: move a program in from CSV files."""

from django.core.management.base import BaseCommand, CommandError

from affiliates.importing import program_import


class Command(BaseCommand):
    help = (
        "Import another platform's export (affiliates.csv, campaigns.csv, links.csv, clicks.csv, "
        "conversions.csv) from a folder: every row checked first, then all or nothing, in one "
        "transaction. A second run of the same files changes nothing."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dir", required=True, help="the folder holding the CSV files")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check and report what would be created, updated or unchanged; change nothing",
        )

    def handle(self, *args, **options) -> None:
        report = program_import(directory=options["dir"], dry_run=options["dry_run"], progress=None)
        self.stdout.write(str(report))
        if report.refusals:
            raise CommandError(f"{len(report.refusals)} row(s) refused; nothing was imported")
