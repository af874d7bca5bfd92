"""The benchmark's results as data: percentiles, ratios, verdicts, the table and the JSON.

Everything here is pure, so it is unit-tested; measuring lives in ``raw.py`` and
``pipeline.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

MET = "met"
NOT_MET = "not met"
NOT_MEASURED = "not measured"  # failed, or left out with --only: says nothing either way


@dataclass(frozen=True, slots=True)
class Target:
    """A goal from the issue and whether this run reached it."""

    text: str
    verdict: str


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table: a measured value, how it compares, under which conditions."""

    section: str
    name: str
    value: float | None
    unit: str
    conditions: str = ""
    ratio: float | None = None
    ratio_of: str = ""
    target: Target | None = None
    text: str | None = None  # shown instead of the value (e.g. "n/a (...)")
    versus: float | None = None  # the value over the peer's rate (tools/bench/peer.py)
    versus_of: str = ""


@dataclass(frozen=True, slots=True)
class Latencies:
    """Summary of a list of latencies in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def percentile(values: Sequence[float], p: float) -> float:
    """The nearest-rank p-th percentile (0 < p <= 100): a value that occurred, never a blend."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < p <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {p}")
    ordered = sorted(values)
    rank = math.ceil(p / 100 * len(ordered))
    return ordered[max(rank, 1) - 1]


def latencies(values_ms: Sequence[float]) -> Latencies | None:
    if not values_ms:
        return None
    return Latencies(
        len(values_ms), percentile(values_ms, 50), percentile(values_ms, 99), max(values_ms)
    )


def rate(count: int, seconds: float) -> float | None:
    """Events (or requests) per second; None when nothing was timed."""
    return count / seconds if seconds > 0 and count > 0 else None


def ratio(value: float | None, limit: float | None) -> float | None:
    """value / limit, or None when either is missing or the limit is not positive."""
    if value is None or limit is None or limit <= 0:
        return None
    return value / limit


def at_least(value: float | None, threshold: float) -> str:
    if value is None:
        return NOT_MEASURED
    return MET if value >= threshold else NOT_MET


def at_most(value: float | None, threshold: float) -> str:
    if value is None:
        return NOT_MEASURED
    return MET if value <= threshold else NOT_MET


def all_of(*verdicts: str) -> str:
    """Met only when every part is met; else the first part that is not."""
    return next((v for v in verdicts if v != MET), MET)


def under_load(
    verdict: str, offered: float, required: float, unit: str, *, how: str = "offered"
) -> str:
    """A target names a load (or a size): passing it at a lighter one shows nothing."""
    if verdict != MET or offered >= required:
        return verdict
    return f"not shown ({how} {number(offered)} {unit}; the target is at {number(required)})"


def number(value: float) -> str:
    """Thousands separators; decimals only for small values."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    return f"{value:,.2f}"


def format_value(row: Row) -> str:
    if row.text is not None:
        return row.text
    if row.value is None:
        return "-"
    return f"{number(row.value)} {row.unit}".strip()


def format_ratio(row: Row) -> str:
    return _share(row.ratio, row.ratio_of)


def format_versus(row: Row) -> str:
    return _share(row.versus, row.versus_of)


def _share(value: float | None, of: str) -> str:
    if value is None:
        return "-"
    return f"{value * 100:.0f}% of {of}" if of else f"{value:.0%}"


HEADER = (
    "section", "measurement", "result", "vs raw limit", "vs peer", "target", "verdict",
    "conditions",
)  # fmt: skip


def table_cells(rows: Iterable[Row]) -> list[tuple[str, ...]]:
    """The table's text cells; the section is named on its first row only."""
    cells: list[tuple[str, ...]] = []
    previous = None
    for row in rows:
        section = row.section if row.section != previous else ""
        previous = row.section
        target = row.target
        cells.append(
            (
                section,
                row.name,
                format_value(row),
                format_ratio(row),
                format_versus(row),
                target.text if target else "-",
                target.verdict if target else "-",
                row.conditions,
            )
        )
    return cells


def format_table(rows: Iterable[Row]) -> str:
    return format_grid(HEADER, table_cells(rows))


def format_grid(header: Sequence[str], body: Sequence[Sequence[str]]) -> str:
    """A plain-text table, columns padded to their widest cell."""
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *(line(c) for c in body)])


def to_json(rows: Iterable[Row], meta: dict[str, Any]) -> dict[str, Any]:
    """The JSON document: the run's metadata, then every row with its formatted cells."""
    out = []
    for row in rows:
        item = asdict(row)
        item["formatted"] = {
            "result": format_value(row),
            "vs_raw_limit": format_ratio(row),
            "vs_peer": format_versus(row),
        }
        out.append(item)
    return {**meta, "results": out}


def below(value: float | None, threshold: float) -> str:
    if value is None:
        return NOT_MEASURED
    return MET if value < threshold else NOT_MET
