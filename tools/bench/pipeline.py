"""Measurements through the ledger's own code: intake (Kafka topic, HTTP), projection, lag.

Progress of the projection is read from ``projector_offsets`` (written in the same
transaction as the rows): an event at (partition, offset) is visible in ``ledger_events`` and
``subscribers`` once its partition's ``next_offset`` is past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from projections.store import PROJECTION
from services.access.tokens import TokenStore
from services.config import Settings
from services.intake.recording import seal_all
from services.messaging.appender import Appender
from services.messaging.recording import to_records
from services.messaging.records import Receipt
from services.privacy.keystore import KeyStore
from services.privacy.secrets import load_secrets
from tools.bench import http_load, workload
from tools.bench.http_load import LoadResult, Outcome, Positions
from tools.bench.wire import Pool

POLL_S = 0.05
LAG_POLL_S = 0.01
Offsets = dict[int, int]
#: ``(done, total)`` of a long phase, for the progress lines.
Progress = Callable[[int, int], None]


def _quiet(done: int, total: int) -> None:
    """No progress lines (the default)."""


_PROGRESS = (
    "SELECT partition, next_offset FROM projector_offsets WHERE projection = $1 AND topic = $2"
)


def ends(positions: Positions) -> Offsets:
    """Per partition, the offset just past the last of the positions."""
    out: Offsets = {}
    for partition, offset in positions:
        out[partition] = max(out.get(partition, 0), offset + 1)
    return out


def firsts(positions: Positions) -> Offsets:
    """Per partition, the first of the positions."""
    out: Offsets = {}
    for partition, offset in positions:
        out[partition] = min(out.get(partition, offset), offset)
    return out


def reached(progress: Offsets, targets: Offsets) -> bool:
    return all(progress.get(p, 0) >= end for p, end in targets.items())


async def progress(conn: asyncpg.Connection[Any], topic: str) -> Offsets:
    rows = await conn.fetch(_PROGRESS, PROJECTION, topic)
    return {row["partition"]: row["next_offset"] for row in rows}


def folded(now: Offsets, targets: Offsets, starts: Offsets | None = None) -> int:
    """How many records from ``starts`` (default: each partition's start) up to ``targets`` the
    projection has folded (records, not events: a transaction's marker takes an offset too)."""
    starts = starts or {}
    return sum(max(0, min(now.get(p, 0), end) - starts.get(p, 0)) for p, end in targets.items())


async def wait_projected(
    conn: asyncpg.Connection[Any],
    topic: str,
    targets: Offsets,
    timeout_s: float,
    report: Progress = _quiet,
    starts: Offsets | None = None,
) -> float | None:
    """The (monotonic) time the projection reached ``targets``; None after ``timeout_s``.
    ``report`` hears how many records from ``starts`` on are folded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    total = folded(targets, targets, starts)
    while loop.time() < deadline:
        now = await progress(conn, topic)
        report(folded(now, targets, starts), total)
        if reached(now, targets):
            return loop.time()
        await asyncio.sleep(POLL_S)
    return None


async def quiesce(
    conn: asyncpg.Connection[Any], settings: Settings, timeout_s: float, quiet_s: float = 1.0
) -> bool:
    """Wait until neither the ledger topic's end nor the projection has moved for ``quiet_s``
    and the feed outbox is empty: requests a client gave up on may still be in intake, and
    the feed publisher may still be publishing what earlier steps queued (an entry per subject
    the projection changed, a million with ``--large``); neither must be charged to the next
    measurement. False when that did not happen within ``timeout_s``."""
    topic = settings.ledger_topic
    partitions = [TopicPartition(topic, p) for p in range(settings.ledger_partitions)]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap)
    await consumer.start()
    loop = asyncio.get_running_loop()
    try:
        deadline = loop.time() + timeout_s
        last: tuple[int, int] | None = None
        since = loop.time()
        while loop.time() < deadline:
            ledger_end = sum((await consumer.end_offsets(partitions)).values())
            now = (ledger_end, sum((await progress(conn, topic)).values()))
            if now != last:
                last, since = now, loop.time()
            elif loop.time() - since >= quiet_s and not await feed_queued(conn):
                return True
            await asyncio.sleep(0.2)
        return False
    finally:
        await consumer.stop()


async def feed_queued(conn: asyncpg.Connection[Any]) -> int:
    """Entries the feed publisher has still to publish."""
    return int(await conn.fetchval("SELECT count(*) FROM feed_outbox"))


async def prefill(
    settings: Settings, start: int, count: int, subjects: int, report: Progress = _quiet
) -> Offsets:
    """Append events, sealed as intake seals them, to the ledger topic with intake's appender;
    where they ended."""
    appender = Appender(settings.kafka_options(), f"bench-prefill-{uuid.uuid4().hex}")
    db = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=2)
    keys = KeyStore(db, load_secrets(settings).master)
    await appender.start()
    receipts: list[Receipt] = []
    try:
        for chunk in workload.event_chunks(start, count, subjects, 5000):
            sealed = seal_all(chunk, await keys.current(e.subject_id for e in chunk))
            receipts.extend(await appender.append(to_records(sealed, settings.ledger_topic)))
            report(len(receipts), count)
    finally:
        await appender.stop()
        await db.close()
    return ends([(r.partition, r.offset) for r in receipts])


@dataclass(frozen=True, slots=True)
class Timed:
    """``count`` events (or requests) in ``seconds`` from ``started`` (the loop's clock);
    seconds is None when it did not finish."""

    count: int
    seconds: float | None
    failed: int = 0
    started: float = 0.0


async def projection(
    conn: asyncpg.Connection[Any],
    topic: str,
    targets: Offsets,
    start_projector: Callable[[], Awaitable[object]],
    timeout_s: float,
    report: Progress = _quiet,
) -> Timed:
    """Start the projector on a pre-filled ledger and time the fold from its first batch to
    the end (process start-up and the group join are not counted)."""
    total = sum(targets.values())
    poller = asyncio.create_task(_fold_samples(conn, topic, targets, timeout_s, report))
    try:
        await start_projector()
        first, done = await poller
    finally:
        poller.cancel()
    if first is None or done is None:
        return Timed(total, None)
    (t0, folded0), t1 = first, done
    return Timed(total - folded0, t1 - t0, started=t0)


async def _fold_samples(
    conn: asyncpg.Connection[Any],
    topic: str,
    targets: Offsets,
    timeout_s: float,
    report: Progress,
) -> tuple[tuple[float, int] | None, float | None]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    first: tuple[float, int] | None = None
    total = sum(targets.values())
    while loop.time() < deadline:
        now_progress = await progress(conn, topic)
        now = loop.time()
        done = folded(now_progress, targets)
        report(done, total)
        if first is None and done > 0:
            first = (now, done)
        if reached(now_progress, targets):
            return first, now
        await asyncio.sleep(POLL_S)
    return first, None


def batch_body(start: int, size: int, subjects: int) -> http_load.Body:
    def body(i: int) -> bytes:
        first = start + i * size
        return orjson.dumps({"events": workload.submissions(first, size, subjects)})

    return body


def single_body(start: int, subjects: int) -> http_load.Body:
    return lambda i: orjson.dumps(workload.submission(start + i, subjects))


@dataclass(frozen=True, slots=True)
class BatchRun:
    intake: Timed
    end_to_end: Timed
    failure_kinds: str


async def intake_client(settings: Settings, connections: int) -> Pool:
    """Connections to intake, with a fresh ``crm`` token (the bench submits consent events)."""
    pool = await asyncpg.create_pool(settings.database_url, min_size=1, max_size=1)
    try:
        token, _ = await TokenStore(pool).create("crm", "bench")
    finally:
        await pool.close()
    url = f"http://{settings.intake_host}:{settings.intake_port}"
    return http_load.client(url, connections, token)


async def http_batches(
    settings: Settings,
    conn: asyncpg.Connection[Any],
    start: int,
    count: int,
    subjects: int,
    clients: int,
    timeout_s: float,
    sent: Progress = _quiet,
    visible: Progress = _quiet,
) -> BatchRun:
    """``count`` events in batches of 1000 by ``clients`` concurrent clients: the time to the
    last 202 (intake), and to the last row visible (end to end)."""
    size = 1000
    requests = math.ceil(count / size)
    answered = 0

    def on_done(outcome: Outcome) -> None:
        nonlocal answered
        answered += len(outcome.positions)
        sent(answered, count)

    async with await intake_client(settings, clients) as http:
        result = await http_load.fixed_count(
            http, "/v1/events/batch", requests, clients, batch_body(start, size, subjects),
            on_done=on_done,
        )  # fmt: skip
    accepted = len(result.positions())
    intake = Timed(accepted, result.last_done - result.started, result.failed, result.started)
    targets = ends(result.positions())
    done = await wait_projected(
        conn, settings.ledger_topic, targets, timeout_s, visible, firsts(result.positions())
    )
    e2e_s = None if done is None else done - result.started
    e2e = Timed(accepted, e2e_s, result.failed, result.started)
    return BatchRun(intake, e2e, result.failure_kinds())


async def http_capacity(
    settings: Settings, start: int, subjects: int, workers: int, seconds: float
) -> LoadResult:
    """Single-event requests from ``workers`` closed-loop clients for ``seconds``."""
    async with await intake_client(settings, workers) as http:
        return await http_load.closed_loop(
            http, "/v1/events", workers, seconds, single_body(start, subjects)
        )


def request_shape(events_per_s: float) -> tuple[float, int]:
    """(requests/s, events per request): single events up to 500/s, batches above."""
    per_request = max(1, math.ceil(events_per_s / 500))
    return events_per_s / per_request, per_request


async def http_open_loop(
    settings: Settings, start: int, subjects: int, rate: float, seconds: float
) -> LoadResult:
    """Single-event requests at a fixed rate; latency measured from each request's due time."""
    async with await intake_client(settings, 256) as http:
        return await http_load.open_loop(
            http, "/v1/events", rate, seconds, single_body(start, subjects)
        )


@dataclass
class LagTracker:
    """Per accepted event, the time from its 202 (and from its request's due time) to the
    first poll that saw it projected."""

    latest: Offsets = field(default_factory=dict)
    latest_at: float = 0.0
    pending: dict[int, list[tuple[int, float, float]]] = field(default_factory=dict)
    lags_ms: list[float] = field(default_factory=list)
    due_lags_ms: list[float] = field(default_factory=list)

    def accepted(self, outcome: Outcome) -> None:
        if outcome.status != 202:
            return
        for partition, offset in outcome.positions:
            if self.latest.get(partition, 0) > offset:  # a poll saw it before the 202 came
                self.lags_ms.append(0.0)
                seen = min(self.latest_at, outcome.done)
                self.due_lags_ms.append((seen - outcome.scheduled) * 1000)
            else:
                entry = (offset, outcome.done, outcome.scheduled)
                heapq.heappush(self.pending.setdefault(partition, []), entry)

    def observe(self, offsets: Offsets, now: float) -> None:
        self.latest, self.latest_at = offsets, now
        for partition, heap in self.pending.items():
            end = offsets.get(partition, 0)
            while heap and heap[0][0] < end:
                _, accepted_at, due = heapq.heappop(heap)
                self.lags_ms.append((now - accepted_at) * 1000)
                self.due_lags_ms.append((now - due) * 1000)

    @property
    def outstanding(self) -> int:
        return sum(len(heap) for heap in self.pending.values())


@dataclass(frozen=True, slots=True)
class LagRun:
    load: LoadResult
    lags_ms: list[float]
    due_lags_ms: list[float]
    unseen: int
    requests_per_s: float
    events_per_request: int


async def end_to_end_lag(
    settings: Settings,
    conn: asyncpg.Connection[Any],
    start: int,
    subjects: int,
    events_per_s: float,
    seconds: float,
    timeout_s: float,
) -> LagRun:
    """Offer events at a fixed rate over HTTP; poll the projection (one query per interval)
    and record, per event, the time from its 202 to its row being visible."""
    requests_per_s, per_request = request_shape(events_per_s)
    if per_request == 1:
        path, body = "/v1/events", single_body(start, subjects)
    else:
        path, body = "/v1/events/batch", batch_body(start, per_request, subjects)
    tracker = LagTracker()
    loop = asyncio.get_running_loop()
    sending = True

    async def poll() -> None:
        while sending or tracker.outstanding:
            offsets = await progress(conn, settings.ledger_topic)
            tracker.observe(offsets, loop.time())
            await asyncio.sleep(LAG_POLL_S)

    http_pool = await intake_client(settings, 256)
    poller = asyncio.create_task(poll())
    try:
        async with http_pool as http:
            load = await http_load.open_loop(
                http, path, requests_per_s, seconds, body, on_done=tracker.accepted
            )
        sending = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(poller), timeout_s)
    finally:
        sending = False
        poller.cancel()
    return LagRun(
        load, tracker.lags_ms, tracker.due_lags_ms, tracker.outstanding, requests_per_s, per_request
    )


async def kafka_intake(
    settings: Settings,
    start: int,
    count: int,
    subjects: int,
    timeout_s: float,
    report: Progress = _quiet,
) -> tuple[Timed, float]:
    """Produce ``count`` submissions to the intake topic; time until the intake group's
    committed offsets (committed in the same transaction as the ledger records) cover them.
    Also returns how long producing them took."""
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap, enable_idempotence=True, acks="all", linger_ms=5
    )
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await producer.start()
    await admin.start()
    loop = asyncio.get_running_loop()
    try:
        started = loop.time()
        produced = asyncio.create_task(
            _produce_submissions(producer, settings, start, count, subjects)
        )
        deadline = started + timeout_s
        done: float | None = None
        while loop.time() < deadline:
            committed = await admin.list_consumer_group_offsets(settings.intake_group)
            total = sum(
                o.offset for tp, o in committed.items() if tp.topic == settings.intake_topic
            )
            report(total, count)
            if total >= count:
                done = loop.time()
                break
            await asyncio.sleep(POLL_S)
        produce_s = await produced - started
    finally:
        await admin.close()
        await producer.stop()
    return Timed(count, None if done is None else done - started, started=started), produce_s


async def _produce_submissions(
    producer: AIOKafkaProducer, settings: Settings, start: int, count: int, subjects: int
) -> float:
    futures = []
    for i in range(start, start + count):
        body = workload.submission(i, subjects)
        futures.append(
            await producer.send(
                settings.intake_topic, value=orjson.dumps(body), key=body["subject_id"].encode()
            )
        )
    await asyncio.gather(*futures)
    return asyncio.get_running_loop().time()
