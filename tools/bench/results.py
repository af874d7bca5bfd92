"""From measurements to table rows: rates, ratios to the raw limits, and the issue's targets.

Pure, like ``report.py``: the numbers come in, the rows go out.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tools.bench.cpu import CpuCost, Window
from tools.bench.report import (
    NOT_MET,
    Latencies,
    Row,
    Target,
    all_of,
    at_least,
    at_most,
    below,
    number,
    rate,
    ratio,
    under_load,
)
from tools.bench.transactions import Grouping
from tools.bench.wal import WalCost
from tools.bench.warmup import WarmUp

# The targets.
E2E_MIN_EVENTS_S = 20_000.0
E2E_MIN_SHARE_OF_RAW = 0.5
SINGLE_MIN_REQ_S = 2_000.0
SINGLE_MAX_P99_MS = 50.0
LAG_MAX_P99_MS = 500.0
LAG_TARGET_LOAD = 5_000.0
RSS_MAX_MB = 250.0
#: The size of ``--large``: the memory and linearity targets are set at it.
LARGE_EVENTS, LARGE_SUBJECTS = 5_000_000, 1_000_000

REPLAY_MIN_EVENTS_S = 30_000.0
FEED_MAX_MS = 1_000.0


@dataclass(frozen=True, slots=True)
class Count:
    """``count`` done in ``seconds`` (None: did not finish in time), ``failed`` refused/lost."""

    count: int
    seconds: float | None
    failed: int = 0
    failure_kinds: str = ""

    @property
    def per_s(self) -> float | None:
        return None if self.seconds is None else rate(self.count, self.seconds)


@dataclass(frozen=True, slots=True)
class OpenLoop:
    """A fixed offered load and what came of it."""

    offered_per_s: float
    seconds: float
    sent: int
    accepted: int
    achieved_per_s: float | None
    latencies: Latencies | None
    failed: int = 0
    failure_kinds: str = ""
    not_sent: int = 0
    events_per_request: int = 1
    due_to_visible: Latencies | None = None  # lag runs: from each request's due time


@dataclass(frozen=True, slots=True)
class PeerRun:
    """One load on the peer: ``clients`` concurrent requests of ``events_per_request``."""

    events_per_request: int
    clients: int
    requests: int  # accepted
    events: Count  # accepted events, timed from the first request to the last answer

    @property
    def per_s(self) -> float | None:
        """Requests/s for single events (one event each), events/s for batches."""
        return self.events.per_s


@dataclass(frozen=True, slots=True)
class PeerRuns:
    """The peer's loads, and the rows its tables held at the end."""

    runs: tuple[PeerRun, ...]
    audit_rows: int
    state_rows: int

    def best(self, *, batches: bool) -> tuple[float | None, str]:
        """The peer's highest rate for single events or for batches, and its concurrency: our
        rows are set against the strongest alternative the run saw."""
        found = [
            (rate, run.clients)
            for run in self.runs
            if (run.events_per_request > 1) == batches and (rate := run.per_s) is not None
        ]
        if not found:
            return None, ""
        rate, clients = max(found)
        return rate, f"peer at {clients}"


@dataclass
class Measured:
    """Everything one run measured; a field left None was not measured (it failed first)."""

    events: int
    subjects: int
    raw_events: int = 0
    raw_producer: Count | None = None
    raw_copy: Count | None = None
    projection: Count | None = None
    replay: Count | None = None
    replay_equal: bool | None = None
    replay_processes: int | None = None
    feed: Latencies | None = None
    feed_missing: int = 0
    feed_backlog_drained: bool = True
    kafka_intake: Count | None = None
    kafka_produce_s: float | None = None
    http_batch: Count | None = None
    end_to_end: Count | None = None
    batch_clients: int = 0
    capacity: Count | None = None
    capacity_workers: int = 0
    capacity_seconds: float = 0.0
    single: OpenLoop | None = None
    lag: OpenLoop | None = None
    lag_unseen: int = 0
    peak_rss_mb: dict[str, float | None] = field(default_factory=dict)
    replay_peak_rss_mb: float | None = None
    cpu: dict[Window, CpuCost] = field(default_factory=dict)  # per event, by measurement
    wal: dict[Window, WalCost] = field(default_factory=dict)  # PostgreSQL's log, likewise
    #: How full intake's Kafka transactions were, by measurement (plan's names).
    transactions: dict[str, Grouping] = field(default_factory=dict)
    warm_up: WarmUp | None = None  # the broker's, before the measurements (none with 0)
    peer: PeerRuns | None = None  # the hand-written alternative (tools/bench/peer.py)
    peer_seconds: float = 0.0


def _equal(equal: bool | None) -> str:
    return "not compared" if equal is None else ("equal" if equal else "DIFFERENT")


def _per_s(count: Count | None) -> float | None:
    return None if count is None else count.per_s


def _done(count: Count | None, what: str) -> str:
    if count is None:
        return "not measured"
    took = "did not finish" if count.seconds is None else f"in {count.seconds:.1f} s"
    return f"{count.count:,} {what} {took}{_failures(count.failed, count.failure_kinds)}"


def _failures(failed: int, kinds: str) -> str:
    if not failed:
        return ""
    return f", {failed:,} failed ({kinds})" if kinds else f", {failed:,} failed"


def _produced(seconds: float | None) -> str:
    return "" if seconds is None else f" (all produced after {seconds:.1f} s)"


#: The peer's rate to set a row against, and which load it came from (:meth:`PeerRuns.best`).
Versus = tuple[float | None, str]
NO_PEER: Versus = (None, "")


def _rate_row(
    section: str, name: str, count: Count | None, unit: str, conditions: str,
    limit: float | None = None, limit_name: str = "", target: Target | None = None,
    peer: Versus = NO_PEER,
) -> Row:  # fmt: skip
    value = _per_s(count)
    text = "did not finish" if count is not None and count.seconds is None else None
    versus = ratio(value, peer[0])
    return Row(
        section, name, value, unit, conditions if count is not None else "not measured",
        ratio=ratio(value, limit), ratio_of=limit_name if limit else "", target=target, text=text,
        versus=versus, versus_of=peer[1] if versus is not None else "",
    )  # fmt: skip


def _peer_best(m: Measured, *, batches: bool) -> Versus:
    return NO_PEER if m.peer is None else m.peer.best(batches=batches)


def _peer_rows(m: Measured) -> list[Row]:
    """One row per load on the peer, and one for the rows its tables held at the end."""
    if m.peer is None:
        return [Row("peer", "hand-written asyncpg endpoint", None, "", text="not measured")]
    rows = [
        _rate_row(
            "peer", _peer_name(run), run.events, _peer_unit(run),
            _done(run.events, "events") + f" ({run.requests:,} requests); {run.clients} "
            f"closed-loop clients for {m.peer_seconds:.0f} s; {PEER_SHAPE}",
        )
        for run in m.peer.runs
    ]  # fmt: skip
    events = sum(run.events.count for run in m.peer.runs)
    written = "equal" if events == m.peer.audit_rows else "DIFFERENT"
    tables = Row(
        "peer", "rows in the peer's tables at the end", m.peer.audit_rows, "audit rows",
        f"{events:,} events accepted: {written}; {m.peer.state_rows:,} subjects' state rows",
    )  # fmt: skip
    return [*rows, tables]


PEER_SHAPE = "a transaction per request (audit INSERT + JSONB upsert), loopback HTTP"


def _peer_name(run: PeerRun) -> str:
    single = run.events_per_request == 1
    size = "single event" if single else f"batches of {run.events_per_request:,}"
    return f"{size}, {run.clients} concurrent"


def _peer_unit(run: PeerRun) -> str:
    """As our rows: single events in requests/s, batches in events/s."""
    return "req/s" if run.events_per_request == 1 else "events/s"


def build_rows(m: Measured) -> list[Row]:
    producer, copy = _per_s(m.raw_producer), _per_s(m.raw_copy)
    single, batches = _peer_best(m, batches=False), _peer_best(m, batches=True)
    rows = [
        _rate_row(
            "raw", "bare aiokafka producer -> scratch topic", m.raw_producer, "events/s",
            _done(m.raw_producer, "encoded consent.given events")
            + "; idempotent, acks=all, linger 2 ms, a transaction per 5,000 records (as intake)",
        ),
        _rate_row(
            "raw", "bare asyncpg COPY -> scratch ledger_events", m.raw_copy, "rows/s",
            _done(m.raw_copy, "rows") + "; one copy_records_to_table, same keys and indexes",
        ),
        *_peer_rows(m),
        _rate_row(
            "intake", "Kafka intake topic -> ledger", m.kafka_intake, "events/s",
            _done(m.kafka_intake, "submissions") + _produced(m.kafka_produce_s)
            + "; timed until the intake group's committed offsets cover them; projector running",
            producer, "raw producer",
        ),
        _rate_row(
            "intake", "HTTP batches -> ledger", m.http_batch, "events/s",
            _done(m.http_batch, "events")
            + f"; batches of 1,000, {m.batch_clients} concurrent clients, timed to the last 202",
            producer, "raw producer", peer=batches,
        ),
        _rate_row(
            "intake", "HTTP single event, capacity", m.capacity, "req/s",
            _done(m.capacity, "requests")
            + f"; {m.capacity_workers} closed-loop clients for {m.capacity_seconds:.0f} s",
            producer, "raw producer",
            Target(
                f">= {number(SINGLE_MIN_REQ_S)} req/s",
                at_least(_per_s(m.capacity), SINGLE_MIN_REQ_S),
            ),
            single,
        ),
        *_single_rows(m.single, producer),
        _rate_row(
            "projection", "pre-filled ledger -> PostgreSQL", m.projection, "events/s",
            _done(m.projection, "events")
            + "; appended with the appender first, timed from the first folded batch to the last",
            copy, "raw COPY",
        ),
        _e2e_row(m, producer, batches),
        *_lag_rows(m.lag, m.lag_unseen),
        _feed_row(m),
        _rate_row(
            "replay", "full rebuild from offset 0 (consent-ledger replay)", m.replay, "events/s",
            _done(m.replay, "events")
            + f"; the pre-filled ledger, compared with live: {_equal(m.replay_equal)}"
            + (f"; in {m.replay_processes} processes" if m.replay_processes else ""),
            copy, "raw COPY",
            Target(
                f">= {number(REPLAY_MIN_EVENTS_S)} events/s",
                at_least(_per_s(m.replay), REPLAY_MIN_EVENTS_S),
            ),
        ),
        *(
            Row(
                "memory", f"{name} peak RSS (VmHWM)", mb, "MB",
                "the process's whole life, from /proc/<pid>/status",
                target=Target(
                    f"< {number(RSS_MAX_MB)} MB with {number(LARGE_SUBJECTS)} subjects",
                    under_load(
                        below(mb, RSS_MAX_MB), m.subjects, LARGE_SUBJECTS, "subjects",
                        how="measured with",
                    ),
                ),
            )
            for name, mb in m.peak_rss_mb.items()
        ),
        Row(
            "memory", "replay peak RSS (VmHWM)", m.replay_peak_rss_mb, "MB",
            "the consent-ledger replay command and its worker processes, each one's peak read "
            "every 0.2 s and added up; a command, not a service, so the services' target does "
            "not apply",
        ),
    ]  # fmt: skip
    return rows


def _e2e_row(m: Measured, producer: float | None, peer: Versus) -> Row:
    value = _per_s(m.end_to_end)
    share = ratio(value, producer)
    verdict = all_of(
        at_least(value, E2E_MIN_EVENTS_S),
        at_least(share, E2E_MIN_SHARE_OF_RAW),
    )
    target = Target(
        f">= {number(E2E_MIN_EVENTS_S)} events/s and >= {E2E_MIN_SHARE_OF_RAW:.0%} of raw producer",
        verdict,
    )
    return _rate_row(
        "end to end", "HTTP batches -> rows visible in PostgreSQL", m.end_to_end, "events/s",
        _done(m.end_to_end, "events") + "; the HTTP batch run above, timed to the last row",
        producer, "raw producer", target, peer,
    )  # fmt: skip


def _load(run: OpenLoop, unit: str) -> str:
    text = f"open loop, {number(run.offered_per_s)} {unit} offered"
    if run.events_per_request > 1:
        requests = run.offered_per_s / run.events_per_request
        text += f" as {number(requests)} req/s x {run.events_per_request} events"
    text += f" for {run.seconds:.0f} s; {run.accepted:,} of {run.sent:,} requests accepted"
    text += _failures(run.failed, run.failure_kinds)
    if run.not_sent:
        text += f", {run.not_sent:,} not sent (client saturated)"
    return text


def _pair(lat: Latencies | None) -> str:
    return "-" if lat is None else f"{number(lat.p50_ms)} / {number(lat.p99_ms)} ms"


def _single_rows(run: OpenLoop | None, producer: float | None) -> list[Row]:
    if run is None:
        return [Row("intake", "HTTP single event, open loop", None, "", text="not measured")]
    conditions = _load(run, "req/s") + "; latency from each request's due time"
    lat = run.latencies
    p99 = None if lat is None else lat.p99_ms
    p99_verdict = under_load(
        at_most(p99, SINGLE_MAX_P99_MS), run.offered_per_s, SINGLE_MIN_REQ_S, "req/s"
    )
    return [
        Row(
            "intake", "HTTP single event, achieved", run.achieved_per_s, "req/s", conditions,
            ratio=ratio(run.achieved_per_s, producer),
            ratio_of="raw producer" if producer else "",
        ),
        Row("intake", "HTTP single event, p50 latency", None if lat is None else lat.p50_ms, "ms"),
        Row(
            "intake", "HTTP single event, p99 latency", p99, "ms",
            target=Target(
                f"<= {number(SINGLE_MAX_P99_MS)} ms at {number(SINGLE_MIN_REQ_S)} req/s",
                p99_verdict,
            ),
        ),
    ]  # fmt: skip


def _feed_row(m: Measured) -> Row:
    lat = m.feed
    worst = None if lat is None else lat.max_ms
    conditions = "withdrawals one every 100 ms over HTTP; time from each 202 to the feed record"
    if lat is not None:
        conditions += f"; {lat.count} seen, p50 {lat.p50_ms:,.0f} ms, p99 {lat.p99_ms:,.0f} ms"
    if m.feed_missing:
        conditions += f"; {m.feed_missing} never seen within 30 s"
    if not m.feed_backlog_drained:
        conditions += "; the feed's earlier backlog was not drained first"
    verdict = NOT_MET if m.feed_missing else at_most(worst, FEED_MAX_MS)
    return Row(
        "feed", "withdrawal -> feed says not eligible, max", worst, "ms", conditions,
        target=Target(f"<= {number(FEED_MAX_MS)} ms under light load", verdict),
    )  # fmt: skip


def _lag_rows(run: OpenLoop | None, unseen: int) -> list[Row]:
    if run is None:
        return [Row("end to end", "lag, HTTP 202 -> row visible", None, "", text="not measured")]
    conditions = _load(run, "events/s") + "; projection polled every 10 ms, one query per poll"
    if unseen:
        conditions += f"; {unseen:,} events not visible before the deadline (not counted)"
    lat = run.latencies
    p99 = None if lat is None else lat.p99_ms
    verdict = under_load(
        at_most(p99, LAG_MAX_P99_MS), run.offered_per_s, LAG_TARGET_LOAD, "events/s"
    )
    return [
        Row("end to end", "lag p50, HTTP 202 -> row visible", None if lat is None else lat.p50_ms,
            "ms", conditions),
        Row(
            "end to end", "lag p99, HTTP 202 -> row visible", p99, "ms",
            target=Target(
                f"<= {number(LAG_MAX_P99_MS)} ms at {number(LAG_TARGET_LOAD)} events/s", verdict
            ),
        ),
        Row(
            "end to end", "p50 / p99, request due -> row visible", None, "ms",
            "the same events, from the time the open loop was due to send them (with queueing)",
            text=_pair(run.due_to_visible),
        ),
    ]  # fmt: skip
