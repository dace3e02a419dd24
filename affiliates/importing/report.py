"""What an import did or would do: refusals with file, line, column and reason, and tallies."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass(frozen=True)
class Refusal:
    file: str
    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file} line {self.line}" if self.line else self.file
        if self.column:
            where += f", column {self.column}"
        return f"{where}: {self.message}"


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def __str__(self) -> str:
        return f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged"


@dataclass
class ImportReport:
    directory: str
    dry_run: bool
    tallies: dict[str, Tally] = field(default_factory=dict)
    refusals: list[Refusal] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rollup_days: tuple[date, date] | None = None
    applied: bool = False

    @property
    def ok(self) -> bool:
        return not self.refusals

    @property
    def total(self) -> Tally:
        total = Tally()
        for tally in self.tallies.values():
            total.created += tally.created
            total.updated += tally.updated
            total.unchanged += tally.unchanged
        return total

    def tally(self, kind: str) -> Tally:
        return self.tallies.setdefault(kind, Tally())

    def refuse(self, file: str, line: int, column: str, message: str) -> None:
        self.refusals.append(Refusal(f"{file}.csv", line, column, message))

    def lines(self) -> list[str]:
        files = ", ".join(f"{name}.csv ({n} rows)" for name, n in self.rows.items())
        out = [f"Import from {self.directory}: {files or 'no files read'}"]
        if self.tallies:
            out.append("Done:" if self.applied else "What the files would do:")
        for kind in KINDS:
            if kind in self.tallies:
                out.append(f"  {kind:<13} {self.tallies[kind]}")
        if self.tallies:
            out.append(f"  {'total':<13} {self.total}")
        if self.refusals:
            out.append(f"{len(self.refusals)} row(s) refused; nothing was imported:")
            out.extend(f"  {refusal}" for refusal in self.refusals)
        if self.warnings:
            out.append(f"{len(self.warnings)} warning(s):")
            out.extend(f"  {w}" for w in self.warnings[:WARNINGS_SHOWN])
            if len(self.warnings) > WARNINGS_SHOWN:
                out.append(f"  ... and {len(self.warnings) - WARNINGS_SHOWN} more")
        if self.applied and self.rollup_days:
            out.append(f"Rollups rebuilt for {self.rollup_days[0]}..{self.rollup_days[1]}.")
        timing = ", ".join(f"{k} {v:.1f} s" for k, v in self.seconds.items())
        if self.dry_run and not self.refusals:
            out.append(f"Dry run: nothing was changed ({timing}).")
        elif self.applied and not (self.total.created or self.total.updated):
            out.append(f"Nothing to change: the files match what is here ({timing}).")
        elif self.applied:
            out.append(f"Imported in one transaction ({timing}).")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


WARNINGS_SHOWN = 100


KINDS = ("affiliates", "brands", "campaigns", "links", "legacy links", "clicks", "conversions")
