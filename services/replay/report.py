"""What a replay reports (``consent-ledger replay --json`` prints this model)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, computed_field


class RowDifference(BaseModel):
    """One row that is not the same in the live table and in the rebuilt one."""

    key: dict[str, str] = Field(description="The row's primary key, column by column.")
    only_in: Literal["live", "replay"] | None = Field(
        default=None, description="Set when the row exists on one side only."
    )
    columns: list[str] = Field(
        default_factory=list, description="The columns whose values differ (values not shown)."
    )


class TableReport(BaseModel):
    """One table compared: row counts, checksums, and the first differing rows."""

    table: str
    live_rows: int
    replay_rows: int
    live_checksum: str = Field(description="sha256 over the rows' keys and md5s, in key order.")
    replay_checksum: str
    differing_rows: int
    differences: list[RowDifference] = Field(
        description="The first differing rows (at most the replay's difference limit)."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def equal(self) -> bool:
        return self.differing_rows == 0


class ReplayReport(BaseModel):
    """A replay: how far it read, how fast, and whether it equals the live tables."""

    replay_schema: str = Field(description="The schema the projections were rebuilt in.")
    live_schema: str
    topic: str
    ends: dict[int, int] = Field(
        description="Per partition, the live projector's stored offset when the replay started: "
        "the replay read every record before it."
    )
    records: int = Field(description="Ledger records read.")
    applied: int = Field(description="Events folded (a duplicate in the log is folded once).")
    undecodable: int = Field(description="Records skipped as undecodable (dead letters).")
    seconds: float = Field(description="The rebuild's duration: reading, folding, writing.")
    events_per_s: float
    rebuild_monotonic: tuple[float, float] | None = Field(
        default=None,
        description="When the rebuild began and ended on this machine's monotonic clock "
        "(CLOCK_MONOTONIC, seconds), so that a benchmark in another process can read the CPU "
        "of that window alone, without the start-up and the comparison.",
    )
    processes: int = Field(
        default=1, description="Processes the rebuild ran in, each with its share of partitions."
    )
    tables: list[TableReport]
    equal: bool
    kept: bool = Field(description="Whether the replay schema was left in place.")
    logged_seconds: float | None = Field(
        default=None,
        description="A kept schema is rebuilt unlogged, then made logged (durable) after the "
        "comparison: how long that took. Not part of ``seconds``.",
    )
    swapped: bool = False
    previous_schema: str | None = Field(
        default=None, description="After --swap: the schema now holding the old live tables."
    )

    def text(self) -> str:
        """The report for people: one line per table, then the differing rows."""
        lines = [
            f"replay of {self.topic} in schema {self.replay_schema}: {self.records:,} records, "
            f"{self.applied:,} events folded, {self.undecodable:,} undecodable, "
            f"{self.seconds:,.1f} s ({self.events_per_s:,.0f} events/s"
            f"{'' if self.processes == 1 else f' in {self.processes} processes'}); "
            f"compared with schema {self.live_schema}",
            f"{'table':<26}{'live rows':>12}{'replay rows':>13}  {'checksum (live)':<18}"
            f"{'checksum (replay)':<20}result",
        ]
        for t in self.tables:
            verdict = "equal" if t.equal else f"{t.differing_rows:,} rows differ"
            lines.append(
                f"{t.table:<26}{t.live_rows:>12,}{t.replay_rows:>13,}  {t.live_checksum[:16]:<18}"
                f"{t.replay_checksum[:16]:<20}{verdict}"
            )
        for t in self.tables:
            for d in t.differences:
                key = ", ".join(f"{k}={v}" for k, v in d.key.items())
                what = f"only in {d.only_in}" if d.only_in else "differs in " + ", ".join(d.columns)
                lines.append(f"{t.table} {key}: {what}")
        if self.swapped:
            lines.append(f"swapped in; the old live tables are in schema {self.previous_schema}")
        elif self.kept:
            lines.append(f"the rebuilt tables are kept in schema {self.replay_schema}")
        if self.logged_seconds is not None:
            lines.append(f"made durable (logged) in {self.logged_seconds:,.1f} s")
        return "\n".join(lines)
