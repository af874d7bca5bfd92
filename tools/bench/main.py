"""``python -m tools bench``: one run, its own stack, every measurement, a table and a JSON file.

The run starts (or reuses) the stack in ``.stack/bench`` on free ports, works in a namespace
of its own (fresh topics and database, removed at the end), runs intake and projector as child
processes, and stops everything it started, also when a step fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import platform
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Collection, Iterator
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import orjson
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from projections.migrations import apply
from services.config import ROOT, Settings
from services.messaging.topics import ensure_topics
from services.progress import ProgressPrinter
from tools import stack
from tools.bench import (
    children,
    cpu,
    feed_latency,
    peer,
    pipeline,
    raw,
    report,
    transactions,
    wal,
    warmup,
    workload,
)
from tools.bench.http_load import LoadResult
from tools.bench.plan import MEASUREMENTS, WITH_SERVICES, select
from tools.bench.results import (
    LARGE_EVENTS,
    LARGE_SUBJECTS,
    Count,
    Measured,
    OpenLoop,
    build_rows,
)
from tools.stack.settings import StackSettings
from tools.stack.state import load_state

#: The --large run's shape (5 events per subject), so that a default run is its base.
DEFAULT_EVENTS, DEFAULT_SUBJECTS = 30_000, 6_000
RESULTS_DIR = ROOT / "bench-results"
PROGRESS_S = 10.0
T = TypeVar("T")


@dataclass(frozen=True)
class Config:
    events: int = DEFAULT_EVENTS
    subjects: int = DEFAULT_SUBJECTS
    large: bool = False
    out: Path | None = None
    http_rate: float = 500.0  # single-event requests/s offered (open loop)
    http_seconds: float = 10.0
    lag_rate: float = 200.0  # events/s offered while measuring the end-to-end lag
    lag_seconds: float = 10.0
    feed_withdrawals: int = 100  # withdrawals timed through to the feed, one every 100 ms
    batch_clients: int = 4
    capacity_workers: int = 64
    capacity_seconds: float = 5.0
    raw_max: int = 200_000  # the raw limits are rates: a sample this large is plenty
    warm_up: int = 40_000  # records through the broker before measuring (warmup.py); 0: none
    peer_clients: tuple[int, ...] = (16, 64)  # the peer's concurrent requests, each load
    peer_seconds: float = 4.0  # per load on the peer
    only: tuple[str, ...] = MEASUREMENTS

    @property
    def timeout_s(self) -> float:
        """How long any one wait may take before its measurement is reported unfinished."""
        return max(90.0, self.events / 500)

    @property
    def span(self) -> int:
        """Phases draw submissions from disjoint index ranges of this size."""
        return max(self.events, 1_000_000)


def configure(
    *,
    events: int | None = None,
    subjects: int | None = None,
    large: bool = False,
    out: Path | None = None,
    http_rate: float | None = None,
    lag_rate: float | None = None,
    warm_up: int | None = None,
    only: Collection[str] = (),
) -> Config:
    """The run's configuration: ``--large`` changes the defaults, explicit values win;
    ``only`` names the measurements to make (see :func:`plan.select`)."""
    config = Config(large=large, out=out, only=select(only))
    if large:
        config = replace(
            config,
            events=LARGE_EVENTS,
            subjects=LARGE_SUBJECTS,
            http_rate=2_000.0,
            lag_rate=5_000.0,
        )
    updates: dict[str, Any] = {
        "events": events,
        "subjects": subjects,
        "http_rate": http_rate,
        "lag_rate": lag_rate,
        "warm_up": warm_up,
    }
    return replace(config, **{k: v for k, v in updates.items() if v is not None})


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def progress(label: str, unit: str = "events") -> pipeline.Progress:
    """Progress lines for a long phase, every ``PROGRESS_S``, timed from this call."""
    printer = ProgressPrinter(label, unit, say, interval_s=PROGRESS_S)
    started = time.monotonic()
    return lambda done, total: printer.report(done, total, time.monotonic() - started)


@dataclass(frozen=True)
class Namespace:
    """The topics and database of one run, inside the bench stack."""

    settings: Settings
    raw_topic: str
    warm_up_topic: str
    admin_url: str
    database: str


async def create_namespace(base: Settings) -> Namespace:
    tag = uuid.uuid4().hex[:8]
    database = f"bench_{tag}"
    conn = await asyncpg.connect(base.database_url)
    try:
        await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    settings = base.model_copy(
        update={
            "database_url": base.database_url.rsplit("/", 1)[0] + "/" + database,
            "ledger_topic": f"bench-{tag}.ledger.v1",
            "intake_topic": f"bench-{tag}.intake.v1",
            "dead_letter_topic": f"bench-{tag}.deadletter.v1",
            "projector_group": f"bench-{tag}-projector",
            "intake_group": f"bench-{tag}-intake",
        }
    )
    namespace = Namespace(
        settings, f"bench-{tag}.raw", f"bench-{tag}.warmup", base.database_url, database
    )
    await ensure_topics(settings)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        scratch = (namespace.raw_topic, namespace.warm_up_topic)
        await admin.create_topics([NewTopic(t, settings.ledger_partitions, 1) for t in scratch])
    finally:
        await admin.close()
    await apply(settings.database_url)
    return namespace


async def drop_stale_namespaces(base: Settings) -> None:
    """Remove what an interrupted earlier run left in the bench stack (one run at a time)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=base.kafka_bootstrap)
    await admin.start()
    try:
        stale = [t for t in await admin.list_topics() if t.startswith("bench-")]
        if stale:
            say(f"removing {len(stale)} topics an earlier run left behind")
            await admin.delete_topics(stale)
    finally:
        await admin.close()
    conn = await asyncpg.connect(base.database_url)
    try:
        for row in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'"
        ):
            await conn.execute(f'DROP DATABASE "{row["datname"]}" WITH (FORCE)')
    finally:
        await conn.close()


async def drop_namespace(namespace: Namespace) -> None:
    s = namespace.settings
    admin = AIOKafkaAdminClient(bootstrap_servers=s.kafka_bootstrap)
    await admin.start()
    try:
        topics = [
            s.ledger_topic, s.intake_topic, s.dead_letter_topic, namespace.raw_topic,
            namespace.warm_up_topic,
        ]  # fmt: skip
        await admin.delete_topics(topics)
    finally:
        await admin.close()
    conn = await asyncpg.connect(namespace.admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{namespace.database}" WITH (FORCE)')
    finally:
        await conn.close()


async def step(name: str, action: Awaitable[T]) -> T | None:
    """Run one measurement; a failure is reported and leaves it unmeasured, the run goes on."""
    try:
        return await action
    except Exception as exc:
        say(f"{name} failed: {exc!r}")
        return None


def open_loop_result(
    load: LoadResult, offered: float, seconds: float, per_request: int = 1
) -> OpenLoop:
    accepted = load.accepted
    return OpenLoop(
        offered_per_s=offered,
        seconds=seconds,
        sent=len(load.outcomes) + load.timed_out,
        accepted=len(accepted),
        achieved_per_s=report.rate(len(accepted) * per_request, load.last_done - load.started),
        latencies=report.latencies([o.latency_ms for o in accepted]),
        failed=load.failed,
        failure_kinds=load.failure_kinds(),
        not_sent=load.not_sent,
        events_per_request=per_request,
    )


class Run:
    """The measurements of one run, in order, against one namespace."""

    def __init__(self, config: Config, namespace: Namespace, conn: asyncpg.Connection[Any]):
        self.config = config
        self.ns = namespace
        self.s = namespace.settings
        self.conn = conn
        self.m = Measured(config.events, config.subjects, batch_clients=config.batch_clients)
        self.children: list[children.Child] = []
        self.stack_parts = stack_parts(self.s)
        self.command: int | None = None
        self.cpu = cpu.Sampler(self.cpu_parts)
        self.wal = wal.WalSampler(self.s.database_url)

    def cpu_parts(self) -> dict[str, int]:
        """The processes whose CPU is read: the running services, the command the bench runs
        (a replay), PostgreSQL and Kafka."""
        running = {c.name: c.process.pid for c in self.children if c.process.poll() is None}
        command = {} if self.command is None else {cpu.COMMANDS: self.command}
        return {**running, **command, **self.stack_parts}

    def command_running(self, pid: int | None) -> None:
        self.command = pid

    async def cost_of(self, name: cpu.Window, timed: pipeline.Timed) -> None:
        """Keep what ``timed``'s window cost per event, when it finished."""
        if timed.seconds is not None:
            await self.window_cost(name, timed.started, timed.started + timed.seconds, timed.count)

    async def window_cost(self, name: cpu.Window, start: float, end: float, count: int) -> None:
        """CPU and PostgreSQL's log per event between two instants of the loop's clock."""
        if (spent := self.cpu.between(start, end, count)) is not None:
            self.m.cpu[name] = spent
        if (written := await self.wal.between(start, end, count)) is not None:
            self.m.wal[name] = written

    def start_index(self, phase: int) -> int:
        return phase * self.config.span

    async def measure(self) -> None:
        steps: dict[str, Callable[[], Awaitable[None]]] = {
            "raw": self.raw_limits,
            "peer": self.peer,
            "projection": self.projection,
            "replay": self.replay,
            "http-batches": self.http_batches,
            "capacity": self.http_capacity,
            "open-loop": self.http_open_loop,
            "lag": self.lag,
            "feed": self.feed_latency,
            "kafka-intake": self.kafka_intake,
        }
        self.cpu.start()
        try:
            await self.wal.start()
            await step("warm-up", self.warm_up())
            for name in self.config.only:
                if name in WITH_SERVICES:
                    if "intake" not in self.running():
                        await self.start_services()
                    await self.settle()
                self.cpu.now()  # so that the services just started are read from here on
                before = await self.intake_totals()
                await step(name, steps[name]())
                await self.keep_grouping(name, before)
        finally:
            await self.cpu.stop()
            await self.wal.stop()

    async def intake_totals(self) -> transactions.Totals | None:
        intake = next((c for c in self.children if c.name == "intake"), None)
        return None if intake is None else await transactions.read(intake.url)

    async def keep_grouping(self, name: str, before: transactions.Totals | None) -> None:
        """Keep how full intake's Kafka transactions were in the measurement just made."""
        after = await self.intake_totals()
        grouped = None if before is None or after is None else transactions.grouping(before, after)
        if grouped is not None:
            self.m.transactions[name] = grouped

    def running(self) -> set[str]:
        return {c.name for c in self.children}

    async def start_services(self) -> None:
        if "projector" not in self.running():
            self.children.append(await children.start("projector", self.s))
        say("starting intake and the feed publisher")
        self.children.append(await children.start("intake", self.s))
        self.children.append(children.start_worker("feed", self.s))

    async def replay(self) -> None:
        from services.replay.report import ReplayReport

        say("replay: consent-ledger replay, rebuilding the projections from offset 0")
        done = await asyncio.to_thread(
            children.run_command, "replay", self.s, "--json", running=self.command_running
        )
        report = ReplayReport.model_validate_json(done.stdout)
        if report.rebuild_monotonic is not None:  # the rebuild alone, as its rate is timed
            # The command reports on the system's monotonic clock, the sampler on the loop's.
            shift = asyncio.get_running_loop().time() - time.monotonic()
            start, end = (at + shift for at in report.rebuild_monotonic)
            await self.window_cost(cpu.Window.REPLAY, start, end, report.applied)
        self.m.replay = Count(report.applied, report.seconds)
        self.m.replay_equal = report.equal
        self.m.replay_processes = report.processes
        self.m.replay_peak_rss_mb = done.peak_rss_mb
        say(f"replay: {_rate(self.m.replay)} events/s; equal to live: {report.equal}")

    async def sample(self, n: int) -> list[raw.Encoded]:
        """``n`` consent.given events, encoded as the ledger topic carries them."""
        sample: list[raw.Encoded] = []
        for chunk in workload.event_chunks(0, n, self.config.subjects, 5000):
            sample.extend(raw.encoded(chunk))
            await asyncio.sleep(0)  # a signal's cancellation gets in between chunks
        return sample

    async def warm_up(self) -> None:
        """Send records through the broker and read them back before measuring, so that its
        start-up is not charged to the first measurement (:mod:`tools.bench.warmup`)."""
        if (n := self.config.warm_up) == 0:
            return
        say(f"warm-up: {n:,} records through the broker and back, not measured")
        records = await self.sample(n)
        loop = asyncio.get_running_loop()
        started = loop.time()
        done = await warmup.warm_broker(self.s, self.ns.warm_up_topic, records)
        self.m.warm_up = done
        if (spent := self.cpu.between(started, loop.time(), done.records)) is not None:
            self.m.cpu[cpu.Window.WARM_UP] = spent  # the broker's start-up, for the record
        say(f"warm-up: done in {done.seconds:.1f} s")

    async def raw_limits(self) -> None:
        n = min(self.config.events, self.config.raw_max)
        say(f"raw: encoding {n:,} consent.given events")
        sample = await self.sample(n)
        say(f"raw: producing {n:,} records to {self.ns.raw_topic}")
        seconds, positions = await raw.produce(self.s.kafka_bootstrap, self.ns.raw_topic, sample)
        self.m.raw_producer = Count(n, seconds)
        say(f"raw: producer {n / seconds:,.0f} events/s")
        rows = raw.rows(self.ns.raw_topic, sample, positions)
        del sample
        say(f"raw: COPY of {n:,} rows")
        seconds = await raw.copy(self.s.database_url, rows)
        self.m.raw_copy = Count(n, seconds)
        say(f"raw: COPY {n / seconds:,.0f} rows/s")

    async def peer(self) -> None:
        c = self.config
        loads = 2 * len(c.peer_clients)
        say(f"peer: hand-written asyncpg endpoint, {loads} loads of {c.peer_seconds:.0f} s")
        self.m.peer_seconds = c.peer_seconds
        self.m.peer = await peer.measure(
            self.s.database_url, self.start_index(7), c.subjects, c.peer_clients, c.peer_seconds
        )
        rates = ", ".join(
            f"{run.events_per_request} x {run.clients}: {_rate(run.events)}"
            for run in self.m.peer.runs
        )
        say(f"peer: events/s by events per request x concurrent requests: {rates}")

    async def projection(self) -> None:
        n = self.config.events
        say(f"projection: pre-filling the ledger with {n:,} events (appender)")
        targets = await pipeline.prefill(
            self.s, self.start_index(1), n, self.config.subjects, progress("projection: appended")
        )

        async def start_projector() -> None:
            say("projection: starting the projector")
            self.children.append(await children.start("projector", self.s))

        timed = await pipeline.projection(
            self.conn, self.s.ledger_topic, targets, start_projector, self.config.timeout_s,
            progress("projection: folded", "records"),
        )  # fmt: skip
        self.m.projection = Count(timed.count, timed.seconds)
        await self.cost_of(cpu.Window.PROJECTION, timed)
        say(f"projection: {_rate(self.m.projection)} events/s")

    async def http_batches(self) -> None:
        c = self.config
        say(f"intake: {c.events:,} events in HTTP batches of 1,000, {c.batch_clients} clients")
        run = await pipeline.http_batches(
            self.s, self.conn, self.start_index(2), c.events, c.subjects, c.batch_clients,
            c.timeout_s, progress("intake: accepted"), progress("end to end: folded", "records"),
        )  # fmt: skip
        kinds = run.failure_kinds
        self.m.http_batch = Count(run.intake.count, run.intake.seconds, run.intake.failed, kinds)
        self.m.end_to_end = Count(
            run.end_to_end.count, run.end_to_end.seconds, run.intake.failed, kinds
        )
        await self.cost_of(cpu.Window.HTTP_BATCHES, run.intake)
        await self.cost_of(cpu.Window.END_TO_END, run.end_to_end)
        say(
            f"intake: HTTP batches {_rate(self.m.http_batch)} events/s, "
            f"end to end {_rate(self.m.end_to_end)} events/s"
        )

    async def http_capacity(self) -> None:
        c = self.config
        self.m.capacity_workers, self.m.capacity_seconds = c.capacity_workers, c.capacity_seconds
        say(f"intake: single-event capacity, {c.capacity_workers} clients, {c.capacity_seconds} s")
        load = await pipeline.http_capacity(
            self.s, self.start_index(3), c.subjects, c.capacity_workers, c.capacity_seconds
        )
        self.m.capacity = Count(
            len(load.accepted), load.last_done - load.started, load.failed, load.failure_kinds()
        )
        await self.cost_of(
            cpu.Window.CAPACITY,
            pipeline.Timed(len(load.accepted), load.last_done - load.started, 0, load.started),
        )
        say(f"intake: capacity {_rate(self.m.capacity)} req/s")

    async def http_open_loop(self) -> None:
        c = self.config
        say(f"intake: single events, open loop at {c.http_rate:,.0f} req/s for {c.http_seconds} s")
        load = await pipeline.http_open_loop(
            self.s, self.start_index(4), c.subjects, c.http_rate, c.http_seconds
        )
        self.m.single = open_loop_result(load, c.http_rate, c.http_seconds)
        lat = self.m.single.latencies
        if lat is not None:
            say(f"intake: p50 {lat.p50_ms:.1f} ms, p99 {lat.p99_ms:.1f} ms")

    async def settle(self) -> None:
        """Let intake, projector and feed publisher go quiet before a measurement with the
        services, so that it is not charged for what earlier steps left behind
        (:func:`pipeline.quiesce`)."""
        queued = await pipeline.feed_queued(self.conn)
        backlog = f" ({queued:,} feed entries queued)" if queued else ""
        say(f"waiting until intake, projector and feed publisher are idle{backlog}")
        started = time.monotonic()
        if await pipeline.quiesce(self.conn, self.s, self.config.timeout_s):
            say(f"idle after {time.monotonic() - started:.1f} s")
        else:
            say(f"still busy after {self.config.timeout_s:.0f} s; going on")

    async def feed_latency(self) -> None:
        count, interval = self.config.feed_withdrawals, 0.1
        say(f"feed: {count} withdrawals, one every {interval * 1000:.0f} ms, to the feed topic")
        run = await feed_latency.measure(self.s, self.conn, count, interval)
        self.m.feed = report.latencies([s * 1000 for s in run.latencies_s])
        self.m.feed_missing = run.missing
        self.m.feed_backlog_drained = run.backlog_drained
        say(f"feed: {len(run.latencies_s)} seen, {run.missing} missing")

    async def lag(self) -> None:
        c = self.config
        say(f"end to end: lag at {c.lag_rate:,.0f} events/s for {c.lag_seconds} s")
        run = await pipeline.end_to_end_lag(
            self.s, self.conn, self.start_index(5), c.subjects, c.lag_rate, c.lag_seconds,
            c.timeout_s,
        )  # fmt: skip
        result = open_loop_result(
            run.load, run.requests_per_s, c.lag_seconds, run.events_per_request
        )
        self.m.lag = replace(
            result,
            offered_per_s=c.lag_rate,
            latencies=report.latencies(run.lags_ms),
            due_to_visible=report.latencies(run.due_lags_ms),
        )
        self.m.lag_unseen = run.unseen
        lat = self.m.lag.latencies
        if lat is not None:
            say(f"end to end: lag p50 {lat.p50_ms:.0f} ms, p99 {lat.p99_ms:.0f} ms")

    async def kafka_intake(self) -> None:
        c = self.config
        say(f"intake: {c.events:,} submissions through the Kafka intake topic")
        timed, produce_s = await pipeline.kafka_intake(
            self.s, self.start_index(6), c.events, c.subjects, c.timeout_s,
            progress("intake: Kafka topic, committed", "submissions"),
        )  # fmt: skip
        self.m.kafka_intake = Count(timed.count, timed.seconds)
        await self.cost_of(cpu.Window.KAFKA_INTAKE, timed)
        self.m.kafka_produce_s = produce_s
        rate = _rate(self.m.kafka_intake)
        say(f"intake: Kafka topic {rate} events/s (submissions produced in {produce_s:.1f} s)")

    async def stop_children(self) -> None:
        for child in reversed(self.children):
            await children.stop(child, self.s)
        self.m.peak_rss_mb = {
            c.name: c.peak_rss_mb for c in sorted(self.children, key=lambda c: c.name)
        }


def stack_parts(settings: Settings) -> dict[str, int]:
    """The stack's PostgreSQL and Kafka processes, when this machine runs them."""
    state = load_state(settings.stack_dir)
    if state is None:
        return {}
    found = {cpu.POSTGRES: state.postgres, cpu.KAFKA: state.kafka}
    return {name: entry.pid for name, entry in found.items() if entry is not None}


def _rate(count: Count | None) -> str:
    value = None if count is None else count.per_s
    return "-" if value is None else f"{value:,.0f}"


async def run(config: Config) -> Measured:
    """One run at a time on the bench stack (:func:`one_run_at_a_time`)."""
    base = stack.isolated_settings(StackSettings(), "bench")
    with one_run_at_a_time(base.stack_dir):
        return await _run_alone(config, base)


class BenchBusyError(RuntimeError):
    """Another bench run holds the bench stack."""


@contextlib.contextmanager
def one_run_at_a_time(stack_dir: Path) -> Iterator[None]:
    """Hold the bench stack for this run. A second run would take this one's topics and
    database for an interrupted run's leftovers and remove them."""
    stack_dir.mkdir(parents=True, exist_ok=True)
    with (stack_dir / "bench.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "unknown"
            raise BenchBusyError(
                f"another bench run (pid {holder}) is using the bench stack in {stack_dir}; "
                "wait for it to end or stop it, then run again"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()
        yield  # the lock goes with the file's closing, also when the process dies


async def _run_alone(config: Config, base: StackSettings) -> Measured:
    """Bring the bench stack up, measure, and tear down whatever this run started."""
    started_stack = stack.status(base) is None
    say(f"stack in {base.stack_dir} (Kafka {base.kafka_bootstrap})")
    namespace: Namespace | None = None
    measured = Measured(config.events, config.subjects)
    loop = asyncio.get_running_loop()
    this = asyncio.current_task()
    assert this is not None
    for sig in (signal.SIGINT, signal.SIGTERM):  # stop cleanly, also as a background job
        loop.add_signal_handler(sig, this.cancel)
    try:
        await stack.up(base, progress=lambda message: say(f"stack: {message}"))
        await drop_stale_namespaces(base)
        namespace = await create_namespace(base)
        conn = await asyncpg.connect(namespace.settings.database_url)
        bench = Run(config, namespace, conn)
        try:
            await bench.measure()
        finally:
            say("stopping intake and projector")
            await bench.stop_children()
            await conn.close()
            measured = bench.m
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        if namespace is not None:
            with contextlib.suppress(Exception):
                await drop_namespace(namespace)
        if started_stack:
            say("stopping the bench stack")
            await asyncio.to_thread(stack.down, base)
    return measured


def default_out(now: datetime) -> Path:
    return RESULTS_DIR / f"{now:%Y%m%dT%H%M%SZ}.json"


def main(config: Config) -> int:
    started_at = datetime.now(UTC)
    load_before = [round(x, 2) for x in os.getloadavg()]
    loads = " ".join(str(x) for x in load_before)
    say(f"load average before the run: {loads} on {os.cpu_count()} CPUs")
    began = time.monotonic()
    try:
        measured = asyncio.run(run(config))
    except BenchBusyError as exc:
        say(f"{exc}; nothing was measured")
        return 2
    except asyncio.CancelledError:
        say("interrupted; everything this run started is stopped, nothing was written")
        return 130
    wall = time.monotonic() - began
    rows = build_rows(measured)
    out = config.out or default_out(started_at)
    meta = {
        "benchmark": "consent-ledger bench",
        "started_at": started_at.isoformat(),
        "wall_s": round(wall, 1),
        "config": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(config).items()},
        "replay_processes": measured.replay_processes,
        "broker_warm_up": None if measured.warm_up is None else asdict(measured.warm_up),
        "cpu_per_event": cpu.to_json(measured.cpu),
        "wal_per_event": wal.to_json(measured.wal),
        "intake_transactions": transactions.to_json(measured.transactions),
        "machine": {
            "cpus": os.cpu_count(),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "notes": [
            "raw producer: idempotent, acks=all, one transaction per 5,000 records (as intake)",
        ],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(orjson.dumps(report.to_json(rows, meta), option=orjson.OPT_INDENT_2) + b"\n")
    print(report.format_table(rows))
    if measured.cpu:
        print(f"\n{cpu.LEGEND}:\n")
        print(report.format_grid(cpu.HEADER, cpu.cells(measured.cpu)))
    if measured.wal:
        print(f"\n{wal.LEGEND}:\n")
        print(report.format_grid(wal.HEADER, wal.cells(measured.wal)))
    if measured.transactions:
        print(f"\n{transactions.LEGEND}:\n")
        print(report.format_grid(transactions.HEADER, transactions.cells(measured.transactions)))
    print(f"\nwall time {wall:.0f} s; results in {out}")
    return 0
