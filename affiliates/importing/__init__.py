"""Moving a program in: import another platform's CSV export (affiliates, campaigns, links,
clicks, conversions), all or nothing, idempotent.

``program_import(directory=...)`` reads up to five files (README "Moving a program in"):

1. **Check** every row of every file, with a reason per refused row (file, line, column, what is
   wrong). Natural keys decide what a row would do: an affiliate is its ``username``, a campaign
   its (brand name, campaign name), a link its ``code``, a click its ``click_id``, a conversion
   the inbox row ``Postback(kind="import", dedup_key="import:<external_id>")``. A row that matches
   and says the same is *unchanged*; one that says something else *updates* (clicks never do).
2. If **any** row was refused, or on a dry run, stop: nothing is written.
3. Otherwise **write** everything in one transaction (bulk inserts for the big tables), then
   rebuild the rollups for the days the imported clicks and conversions fall on.

History was paid on the old platform: imported conversions get ``ledger_synced=True`` and no
ledger entries.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from django.db import IntegrityError, transaction
from tqdm import tqdm

from affiliates.importing.cells import COLUMNS, FILES
from affiliates.importing.check import Checker
from affiliates.importing.report import ImportReport, Refusal
from affiliates.importing.rows import Plan
from affiliates.importing.write import Writer
from affiliates.services import Actor
from attribution.rollups import keep

__all__ = ["COLUMNS", "FILES", "ImportReport", "program_import"]


def program_import(
    *,
    directory: str | Path,
    dry_run: bool = False,
    progress: bool | None = False,
    actor: Actor = None,
    label: str = "",
) -> ImportReport:
    """Check, then (unless refused or a dry run) import the CSV files in ``directory``.

    ``progress``: True shows tqdm bars, False hides them, None shows them on a terminal only;
    ``label`` names the files in the report and audit rows (default: the folder).
    Raises nothing for bad input: every problem is a refusal in the report.
    """
    directory = Path(directory)
    report = ImportReport(directory=label or str(directory), dry_run=dry_run)
    started = time.monotonic()
    checker = Checker(directory, report, progress)
    plan = checker.run()
    checker.count()
    report.seconds["check"] = time.monotonic() - started
    if report.refusals or dry_run:
        return report
    started = time.monotonic()
    if not report.total.created and not report.total.updated:
        report.applied = True  # a repeat run: nothing to write, nothing to rebuild
        return report
    try:
        with transaction.atomic():
            Writer(plan, report, progress, actor).run()
            report.seconds["write"] = time.monotonic() - started
            started = time.monotonic()
            _rebuild_rollups(plan, report, progress)
            report.seconds["rollups"] = time.monotonic() - started
    except IntegrityError as exc:
        report.refusals.append(
            Refusal(
                str(directory),
                0,
                "",
                f"a row conflicts with a change made while the import ran ({exc}); run it again",
            )
        )
        return report
    report.applied = True
    return report


def _rebuild_rollups(plan: Plan, report: ImportReport, progress: bool | None) -> None:
    """Recompute the rollups of every day an imported click or conversion falls on.

    A local day lies within a day of its UTC date, so one day either side is rebuilt too.
    """
    if not plan.moments:
        return
    since = min(plan.moments).date() - timedelta(days=1)
    until = max(plan.moments).date() + timedelta(days=1)
    report.rollup_days = (since, until)
    # The click counters cover the clicks up to the fill's watermark (those above it are read
    # live): count the imported ones in first, so that the rebuilt rows hold them too.
    while keep.clicks_fill():
        pass
    disable = None if progress is None else not progress
    with tqdm(
        total=(until - since).days + 1, desc="rebuilding rollups", unit="day", disable=disable
    ) as bar:
        keep.rebuild(since=since, until=until, progress=bar.update)
