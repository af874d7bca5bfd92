"""What an event costs in CPU, and where: the machine's busy time and each process tree's, from
``/proc``, sampled while the bench runs.

On two cores shared by Kafka, PostgreSQL, the services and the load generator, a rate alone does
not say which of them is the limit, nor whether a larger run is slower because each event costs
more or because the machine was busy with something else. The sampler reads every part a few
times a second; a measurement's window is then cut out of the samples (interpolated at its ends).
"""

from __future__ import annotations

import asyncio
import bisect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from tools.bench.children import descendants
from tools.bench.samples import interpolated

TICK_S = 1 / os.sysconf("SC_CLK_TCK")
SAMPLE_S = 0.25
#: The bench's own process, the load generator. Its own time only: the services it started are
#: parts of their own, and the commands it waited for are counted apart (``commands``).
BENCH = "bench"
COMMANDS = "commands"
POSTGRES, KAFKA = "PostgreSQL", "Kafka"


class Window(StrEnum):
    """The measurements whose CPU is read, as the table and the result file name them."""

    #: Not a measurement: what the broker's start-up costs, read before the first one.
    WARM_UP = "broker warm-up"
    PROJECTION = "projection"
    #: The rebuild alone, the window its rate is timed over (files from before this name held
    #: the whole command under "replay", start-up and comparison too, and are not compared).
    REPLAY = "replay rebuild"
    HTTP_BATCHES = "HTTP batches"
    END_TO_END = "end to end"
    CAPACITY = "single-event capacity"
    KAFKA_INTAKE = "Kafka intake topic"


def stat_times(stat_text: str) -> tuple[float, float]:
    """CPU seconds of a ``/proc/<pid>/stat`` text: (the process's own, its reaped children's)."""
    fields = stat_text.rpartition(")")[2].split()  # the name may hold spaces and parentheses
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return (utime + stime) * TICK_S, (cutime + cstime) * TICK_S


def _times(pid: int) -> tuple[float, float] | None:
    try:
        return stat_times(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError, IndexError):  # ended meanwhile
        return None


_T = TypeVar("_T")

#: How often a reading is taken at most; the last is kept even if a reap went on during it.
_ATTEMPTS = 5


def _still(read_once: Callable[[], tuple[_T, Mapping[int, float]] | None]) -> _T | None:
    """``read_once``'s result, taken again while one of the reaped-children accounts it read
    (pid to seconds) moved meanwhile: a child reaped during a reading would be in neither its
    parent's account as read nor its own (it is gone when its turn comes). None if
    ``read_once`` found nothing."""
    for attempt in range(_ATTEMPTS):
        found = read_once()
        if found is None:
            return None
        result, waited = found
        if attempt == _ATTEMPTS - 1 or all(
            _times_waited(p) in (None, w)  # None: reaped itself meanwhile, its parent moved
            for p, w in waited.items()
        ):
            break
    return result


def tree_cpu_s(pid: int) -> float | None:
    """CPU seconds of ``pid`` and the processes below it, including the ones that ended and
    were waited for (their time moves into their parent's account); None if ``pid`` is gone.
    Read again if a child was reaped meanwhile (:func:`_still`; likely what once lost half a
    replay rebuild's row, its workers ending with the rebuild)."""
    return _still(lambda: _tree_times(pid))


def _times_waited(pid: int) -> float | None:
    times = _times(pid)
    return None if times is None else times[1]


def _tree_times(pid: int) -> tuple[float, dict[int, float]] | None:
    """The tree's CPU seconds, and each process's reaped children's seconds as read."""
    own = _times(pid)
    if own is None:
        return None
    total, waited = sum(own), {pid: own[1]}
    # Main threads start the postmaster's backends and a replay's workers. Every thread's list
    # took 9 ms to read for a process of 150 threads (the broker's JVM has about that many),
    # four times a second; a child another thread started is missed, and shows in ``other``.
    for below in descendants(pid, every_thread=False):
        if (times := _times(below)) is not None:
            total += sum(times)
            waited[below] = times[1]
    return total, waited


def machine_busy_s(proc_stat_text: str) -> float:
    """Busy CPU seconds of the whole machine since boot, from ``/proc/stat``'s first line:
    user, nice, system, irq and softirq (not idle, iowait, or time stolen by a hypervisor)."""
    fields = [int(f) for f in proc_stat_text.split("\n", 1)[0].split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) * TICK_S


@dataclass(frozen=True, slots=True)
class Reading:
    """CPU seconds so far: the machine's busy time, the commands the bench waited for (a
    replay's time moves into the bench's account when it ends), and each part's (a part missing
    was not running; a command still running is the part ``commands``)."""

    at: float
    machine_s: float
    commands_s: float
    parts: Mapping[str, float]


def read(at: float, parts: Mapping[str, int]) -> Reading:
    """Every part's CPU so far; read again if the bench reaped a command meanwhile (its time
    would be neither in the command's tree nor in the bench's account as read)."""
    me = os.getpid()

    def once() -> tuple[tuple[float, dict[str, float]], dict[int, float]]:
        own, waited = _times(me) or (0.0, 0.0)
        found = {BENCH: own}
        for name, pid in parts.items():
            if (spent := tree_cpu_s(pid)) is not None:
                found[name] = spent
        return (waited, found), {me: waited}

    waited, found = _still(once) or (0.0, {})
    return Reading(at, machine_busy_s(Path("/proc/stat").read_text()), waited, found)


@dataclass(frozen=True, slots=True)
class CpuCost:
    """CPU microseconds per event (or request) while a measurement ran: the whole machine's,
    and each part's; ``other`` is what the machine spent outside them."""

    count: int
    seconds: float
    machine_us: float
    parts_us: dict[str, float]

    @property
    def other_us(self) -> float:
        return self.machine_us - sum(self.parts_us.values())

    @property
    def machine_cores(self) -> float:
        """How many of the machine's cores were busy, on average."""
        return self.machine_us * self.count / 1e6 / self.seconds if self.seconds > 0 else 0.0


def cost(start: Reading, end: Reading, count: int) -> CpuCost | None:
    """Per event of ``count`` between two readings; only parts read at both ends count."""
    if count <= 0 or end.at <= start.at:
        return None
    per = 1e6 / count
    parts = {
        name: (end.parts[name] - spent) * per
        for name, spent in start.parts.items()
        if name in end.parts
    }
    if end.commands_s > start.commands_s:  # ended in the window: its time moved to the bench's
        parts[COMMANDS] = parts.get(COMMANDS, 0.0) + (end.commands_s - start.commands_s) * per
    return CpuCost(count, end.at - start.at, (end.machine_s - start.machine_s) * per, parts)


def interpolate(samples: list[Reading], at: float) -> Reading | None:
    """The reading at ``at``, linear between the samples around it (None outside them)."""
    return interpolated(samples, at, _mix)


def _mix(a: Reading, b: Reading, w: float) -> Reading:
    def mix(x: float, y: float) -> float:
        return x + (y - x) * w

    parts = {n: mix(v, b.parts[n]) for n, v in a.parts.items() if n in b.parts}
    return Reading(
        mix(a.at, b.at), mix(a.machine_s, b.machine_s), mix(a.commands_s, b.commands_s), parts
    )


#: The table's columns: the bench, the services it started (named as they are), the commands it
#: waited for, then the stack.
PARTS = (BENCH, "intake", "projector", "feed", COMMANDS, POSTGRES, KAFKA)
HEADER = ("measurement", "events", "machine busy", "machine", *PARTS, "other")
LEGEND = (
    "CPU microseconds per event (per request for the single-event row) while each measurement "
    "ran, read from /proc: the machine's busy time (its cores on average), then each process "
    "tree's; bench is the load generator, commands the replay command and its workers, other "
    "what the machine spent outside them"
)


def cells(costs: Mapping[Window, CpuCost]) -> list[tuple[str, ...]]:
    """One line per measurement for :func:`tools.bench.report.format_grid`."""
    return [
        (
            name.value,
            f"{c.count:,}",
            f"{c.machine_cores:.2f} cores",
            _us(c.machine_us),
            *(_us(c.parts_us.get(part)) for part in PARTS),
            _us(c.other_us),
        )
        for name, c in costs.items()
    ]


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def to_json(costs: Mapping[Window, CpuCost]) -> dict[str, dict[str, object]]:
    return {
        name.value: {
            "count": c.count,
            "seconds": round(c.seconds, 3),
            "machine_cores": round(c.machine_cores, 3),
            "machine_us": round(c.machine_us, 1),
            "parts_us": {part: round(us, 1) for part, us in c.parts_us.items()},
            "other_us": round(c.other_us, 1),
        }
        for name, c in costs.items()
    }


class Sampler:
    """Reads the parts (``parts()`` says which run now) every ``SAMPLE_S`` in the background."""

    def __init__(self, parts: Callable[[], Mapping[str, int]]) -> None:
        self._parts = parts
        self.samples: list[Reading] = []
        self._task: asyncio.Task[None] | None = None

    def _keep(self, reading: Reading) -> Reading:
        bisect.insort(self.samples, reading, key=lambda s: s.at)  # a thread's may come late
        return reading

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:  # read in a thread: a tick of file reads must not hold up the load
            self._keep(await asyncio.to_thread(read, loop.time(), self._parts()))
            await asyncio.sleep(SAMPLE_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="cpu-sampler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def now(self) -> Reading:
        return self._keep(read(asyncio.get_running_loop().time(), self._parts()))

    def between(self, start: float, end: float, count: int) -> CpuCost | None:
        """The cost per event of a window of the run (loop clock); None if it was not sampled."""
        self.now()  # the window may end just now
        first, last = interpolate(self.samples, start), interpolate(self.samples, end)
        return None if first is None or last is None else cost(first, last, count)
