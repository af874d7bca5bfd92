"""HTTP load generators for intake, on loopback: batches, closed loop, and open loop.

The open loop sends request i at ``t0 + i / rate`` whatever happened to earlier requests, and
measures each latency from that scheduled time, so a slow server cannot slow the load down
and hide its own queueing (no coordinated omission). Every generator is bounded in count and
in time.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from tools.bench.wire import HttpError, Pool

Body = Callable[[int], bytes]
Positions = list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request: when it was due, when its answer came, the status (0: no answer)."""

    scheduled: float
    done: float
    status: int
    positions: Positions

    @property
    def latency_ms(self) -> float:
        return (self.done - self.scheduled) * 1000


@dataclass
class LoadResult:
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = 0.0
    not_sent: int = 0  # the client had too many requests in flight to send these on time
    timed_out: int = 0  # still unanswered at the deadline

    @property
    def accepted(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == 202]

    @property
    def failed(self) -> int:
        return len(self.outcomes) - len(self.accepted) + self.timed_out

    def failure_kinds(self) -> str:
        """Failed requests by HTTP status ("no answer": a transport error or timeout)."""
        kinds = Counter(
            "no answer" if o.status == 0 else f"HTTP {o.status}"
            for o in self.outcomes
            if o.status != 202
        )
        if self.timed_out:
            kinds["unanswered at the deadline"] += self.timed_out
        return ", ".join(f"{kind}: {n:,}" for kind, n in sorted(kinds.items()))

    @property
    def last_done(self) -> float:
        return max((o.done for o in self.outcomes), default=self.started)

    def positions(self) -> Positions:
        return [p for o in self.accepted for p in o.positions]


def client(base_url: str, connections: int, token: str | None = None) -> Pool:
    """Keep-alive connections to one service (see ``wire.py`` for why not httpx)."""
    return Pool(base_url, connections, token=token)


async def post(http: Pool, path: str, body: bytes, scheduled: float) -> Outcome:
    loop = asyncio.get_running_loop()
    try:
        status, content = await http.post(path, body)
    except HttpError:
        return Outcome(scheduled, loop.time(), 0, [])
    positions: Positions = []
    if status == 202:
        positions = [
            (e["partition"], e["offset"])
            for e in orjson.loads(content)["events"]
            if "partition" in e  # the peer's receipts (peer_app.py) name no Kafka position
        ]
    return Outcome(scheduled, loop.time(), status, positions)


async def fixed_count(
    http: Pool,
    path: str,
    requests: int,
    workers: int,
    body: Body,
    *,
    on_done: Callable[[Outcome], None] | None = None,
) -> LoadResult:
    """``requests`` requests by ``workers`` concurrent senders, each waiting for its answer."""
    loop = asyncio.get_running_loop()
    result = LoadResult(started=loop.time())
    queue = iter(range(requests))

    async def worker() -> None:
        for i in queue:
            outcome = await post(http, path, body(i), loop.time())
            result.outcomes.append(outcome)
            if on_done is not None:
                on_done(outcome)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return result


async def closed_loop(
    http: Pool, path: str, workers: int, seconds: float, body: Body
) -> LoadResult:
    """As many requests as ``workers`` sequential senders manage in ``seconds``."""
    loop = asyncio.get_running_loop()
    result = LoadResult(started=loop.time())
    end = result.started + seconds
    counter = iter(range(10**9))

    async def worker() -> None:
        while loop.time() < end:
            result.outcomes.append(await post(http, path, body(next(counter)), loop.time()))

    await asyncio.gather(*(worker() for _ in range(workers)))
    return result


async def open_loop(
    http: Pool,
    path: str,
    rate: float,
    seconds: float,
    body: Body,
    *,
    max_in_flight: int = 256,
    grace_s: float = 10.0,
    on_done: Callable[[Outcome], None] | None = None,
) -> LoadResult:
    """``rate * seconds`` requests at a fixed rate; answers awaited at most ``grace_s`` more."""
    loop = asyncio.get_running_loop()
    result = LoadResult(started=loop.time() + 0.01)
    in_flight: set[asyncio.Task[None]] = set()

    async def one(i: int, scheduled: float) -> None:
        outcome = await post(http, path, body(i), scheduled)
        result.outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)

    for i in range(math.floor(rate * seconds)):
        scheduled = result.started + i / rate
        delay = scheduled - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if len(in_flight) >= max_in_flight:
            result.not_sent += 1
            continue
        task = asyncio.create_task(one(i, scheduled))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    if in_flight:
        _, pending = await asyncio.wait(set(in_flight), timeout=grace_s)
        result.timed_out = len(pending)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    return result
