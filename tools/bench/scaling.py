"""The linearity target: a larger run's cost per event against smaller runs', path by path.

Reads result files that ``python -m tools bench`` wrote; the rest is pure.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from tools.bench.cpu import Window
from tools.bench.report import Row, Target, at_most, number, under_load
from tools.bench.results import LARGE_EVENTS

#: The rows whose cost per event can grow with the ledger's size, each with the name of its
#: CPU reading (:mod:`tools.bench.cpu`): the runs that handle ``events`` events, and the
#: single-event capacity (a request is one event), which runs against the ledger they left.
SCALED = (
    ("intake", "Kafka intake topic -> ledger", Window.KAFKA_INTAKE),
    ("intake", "HTTP batches -> ledger", Window.HTTP_BATCHES),
    ("intake", "HTTP single event, capacity", Window.CAPACITY),
    ("projection", "pre-filled ledger -> PostgreSQL", Window.PROJECTION),
    ("end to end", "HTTP batches -> rows visible in PostgreSQL", Window.END_TO_END),
    ("replay", "full rebuild from offset 0 (consent-ledger replay)", Window.REPLAY),
)
MAX_GROWTH = 1.5


class _Size(BaseModel):
    events: int
    subjects: int
    only: list[str]


class _Result(BaseModel):
    section: str
    name: str
    value: float | None
    unit: str


class _Cpu(BaseModel):
    machine_us: float


class _Wal(BaseModel):
    bytes_per_event: float


class _WarmUp(BaseModel):
    records: int


class BenchFile(BaseModel):
    """The parts of a result file that the comparison reads."""

    config: _Size
    results: list[_Result]
    replay_processes: int | None = Field(
        default=1, description="Missing in files from before replays ran in several processes."
    )
    cpu_per_event: dict[str, _Cpu] = Field(
        default_factory=dict, description="Missing in files from before the bench read CPU."
    )
    wal_per_event: dict[str, _Wal] = Field(
        default_factory=dict, description="Missing in files from before the bench read the log."
    )
    broker_warm_up: _WarmUp | None = Field(
        default=None, description="Missing when the warm-up failed or was not asked for."
    )
    started_at: datetime | None = None
    wall_s: float | None = None

    @property
    def warmed_up(self) -> int:
        """The records the warm-up sent through the broker: what it did, not what it was
        asked to do (a warm-up that failed leaves the broker cold)."""
        return 0 if self.broker_warm_up is None else self.broker_warm_up.records

    @property
    def span(self) -> tuple[datetime, datetime] | None:
        """When the run began and ended (UTC), if the file says."""
        if self.started_at is None or self.wall_s is None:
            return None
        began = self.started_at.astimezone(UTC)
        return began, began + timedelta(seconds=self.wall_s)

    def rate(self, section: str, name: str) -> float | None:
        found = [r.value for r in self.results if (r.section, r.name) == (section, name)]
        return found[0] if found else None

    def cpu_us(self, name: str) -> float | None:
        """The machine's CPU microseconds per event in the measurement called ``name``."""
        found = self.cpu_per_event.get(name)
        return None if found is None else found.machine_us

    def wal_kb(self, name: str) -> float | None:
        """PostgreSQL's write-ahead log in KB per event in the measurement ``name``."""
        found = self.wal_per_event.get(name)
        return None if found is None else found.bytes_per_event / 1024


class CompareError(Exception):
    """The two files cannot be compared; the message says why."""


def load(path: Path) -> BenchFile:
    try:
        return BenchFile.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise CompareError(f"{path}: cannot be read ({exc.strerror})") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        reason = f"{where}: {first['msg']}" if where else first["msg"]
        raise CompareError(f"{path}: not a bench result file ({reason})") from None


def compare(smaller: Sequence[BenchFile], larger: BenchFile) -> list[Row]:
    """One row per scaled path: the larger run's cost per event as a multiple of the smaller
    runs'. Their median is the base, since one run on a shared machine can be far off."""
    sizes = {(run.config.events, run.config.subjects) for run in smaller}
    if len(sizes) != 1:
        raise CompareError(f"the smaller runs differ in size: {sorted(sizes)} (events, subjects)")
    ((events, subjects),) = sizes
    if larger.config.events <= events:
        raise CompareError(
            f"the last file must be the larger run: it has {larger.config.events:,} events, "
            f"the others {events:,}"
        )
    if events * larger.config.subjects != larger.config.events * subjects:
        raise CompareError(
            f"the runs differ in shape: {_shape(events, subjects)} in the smaller runs, "
            f"{_shape(larger.config.events, larger.config.subjects)} in the larger; only the "
            "size may differ, so give the runs the same events per subject"
        )
    steps = {tuple(run.config.only) for run in [*smaller, larger]}
    if len(steps) != 1:
        made = " / ".join(",".join(s) for s in sorted(steps))
        raise CompareError(
            f"the runs made different measurements ({made}); what runs before a measurement "
            "changes its result, so make them all with the same --only"
        )
    warmed = {run.warmed_up for run in [*smaller, larger]}
    if len(warmed) != 1:
        counts = " / ".join(f"{n:,}" for n in sorted(warmed))
        raise CompareError(
            f"the runs warmed the broker up with different numbers of records ({counts}); the "
            "first measurement carries the broker's start-up without it, so give every run "
            "the same --warm-up (a warm-up that failed counts as none: see the run's log)"
        )
    processes = {run.replay_processes for run in [*smaller, larger]}
    if len(processes) != 1:
        counts = " / ".join(str(n) for n in sorted(processes, key=str))
        raise CompareError(
            f"the replays ran in different numbers of processes ({counts}); give every run the "
            "same CONSENT_LEDGER_REPLAY_PROCESSES"
        )
    rows = [_rate_row(smaller, larger, section, name) for section, name, _ in SCALED]
    if any(run.cpu_per_event for run in [*smaller, larger]):
        rows += [_cpu_row(smaller, larger, section, cpu) for section, _, cpu in SCALED]
    if any(run.wal_per_event for run in [*smaller, larger]):
        rows += [_wal_row(smaller, larger, section, window) for section, _, window in SCALED]
    return rows


def made_when(smaller: Sequence[BenchFile], larger: BenchFile) -> str | None:
    """When the smaller runs were made, seen from the larger one: this machine's speed moves
    by up to half within minutes (docs/performance.md), so runs far apart compare less well."""
    spans = [span for run in smaller if (span := run.span) is not None]
    if (around := larger.span) is None or not spans:
        return None
    began, ended = around
    minute = timedelta(minutes=1)
    after = [(start - ended) / minute for start, _ in spans if start >= ended]
    before = [(began - end) / minute for _, end in spans if end <= began]
    told = [
        f"{len(found)} {verb} {_minutes(found)} {when}"
        for found, verb, when in (
            (before, "ended", "before it began"),
            (after, "began", "after it ended"),
        )
        if found
    ]
    if overlapping := len(spans) - len(after) - len(before):
        told.append(f"{overlapping} ran while it ran")
    return (
        f"when: the larger run ran from {began:%Y-%m-%d %H:%M} to {ended:%H:%M} UTC; of "
        f"the {len(spans)} smaller runs, " + ", ".join(told) + ". The machine's speed moves "
        "within minutes, so the smaller runs belong right before or after the larger one."
    )


def _minutes(found: Sequence[float]) -> str:
    low, high = min(found), max(found)
    return f"{low:,.0f} min" if round(low) == round(high) else f"{low:,.0f} to {high:,.0f} min"


def _rate_row(smaller: Sequence[BenchFile], larger: BenchFile, section: str, name: str) -> Row:
    """Time per event: the smaller runs' median rate over the larger run's."""
    small, spread = _median([run.rate(section, name) for run in smaller])
    large = larger.rate(section, name)
    growth = small / large if small and large else None
    return _row(
        smaller, larger, f"{section}: {name}", growth,
        f"median {_rate(small)}{spread}; {_size(larger)}: {_rate(large)}",
    )  # fmt: skip


def _cpu_row(smaller: Sequence[BenchFile], larger: BenchFile, section: str, name: Window) -> Row:
    """CPU per event, the whole machine's: the larger run's over the smaller runs' median. It
    counts work done, so a run that only waited longer does not look costlier."""
    title = f"{section}: CPU per event ({name})"
    return _growth_row(smaller, larger, title, lambda run: run.cpu_us(name), _us)


def _wal_row(smaller: Sequence[BenchFile], larger: BenchFile, section: str, name: Window) -> Row:
    """PostgreSQL's log per event: a count the machine's speed does not move, shown beside the
    costs to say whether PostgreSQL's share grew; one part of the cost, so it has no verdict."""
    title = f"{section}: PostgreSQL's log per event ({name})"
    return _growth_row(smaller, larger, title, lambda run: run.wal_kb(name), _kb, judged=False)


def _growth_row(
    smaller: Sequence[BenchFile],
    larger: BenchFile,
    title: str,
    read: Callable[[BenchFile], float | None],
    show: Callable[[float | None], str],
    *,
    judged: bool = True,
) -> Row:
    """The larger run's value per event over the smaller runs' median."""
    small, spread = _median([read(run) for run in smaller])
    large = read(larger)
    growth = large / small if small and large else None
    seen = f"median {show(small)}{spread}; {_size(larger)}: {show(large)}"
    return _row(smaller, larger, title, growth, seen, judged=judged)


def _median(values: Sequence[float | None]) -> tuple[float | None, str]:
    """The median of the values measured, and their range as text when there are several."""
    found = sorted(v for v in values if v is not None)
    if not found:
        return None, ""
    spread = f" ({number(found[0])} to {number(found[-1])})" if len(found) > 1 else ""
    return statistics.median(found), spread


def _row(
    smaller: Sequence[BenchFile],
    larger: BenchFile,
    name: str,
    growth: float | None,
    seen: str,
    *,
    judged: bool = True,
) -> Row:
    # The runs have one shape, so a run with the --large events has its subjects too.
    verdict = under_load(
        at_most(growth, MAX_GROWTH), larger.config.events, LARGE_EVENTS, "events", how="run with"
    )
    target = Target(f"<= {MAX_GROWTH} x the smaller runs' cost per event", verdict)
    return Row(
        "scale", name, growth, "x", f"{len(smaller)} run(s) of {_size(smaller[0])}: {seen}",
        target=target if judged else None,
    )  # fmt: skip


def _shape(events: int, subjects: int) -> str:
    return f"{events / subjects:g} events per subject"


def _size(run: BenchFile) -> str:
    return f"{run.config.events:,} events, {run.config.subjects:,} subjects"


def _rate(value: float | None) -> str:
    return "not measured" if value is None else f"{number(value)} events/s"


def _us(value: float | None) -> str:
    return "not measured" if value is None else f"{number(value)} µs of CPU per event"


def _kb(value: float | None) -> str:
    return "not measured" if value is None else f"{number(value)} KB of log per event"
