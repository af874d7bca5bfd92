"""The one batch runner: ledger records in, decoded and opened records cut by partition, each
part written by :meth:`SubscriberStore.apply` in a transaction of its own.

The live projector and the replay both run their batches through it; what each plugs in is
its source's policy: how a refused record is handled (dead-lettered live, counted by the
replay, which reads records the live projector dead-lettered), whether a failure is retried
(live: forever, with backoff) or ends the run (replay), which writer a partition goes to, and
what is done once a part is written (metrics and lag live, progress in the replay).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeAlias, TypeVar

from pydantic import ValidationError

from events.sealing import TamperedError
from projections.records import LedgerRecord
from projections.store import BatchResult, SubscriberStore
from services.metrics import PROJECTOR_RETRIES
from services.privacy.keystore import KeyStore
from services.projection.batches import Batch, Part, Record, Slot, decode_record, open_all, split

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
T = TypeVar("T")
#: Told what a part changed once its transaction committed.
Written: TypeAlias = Callable[[Part, BatchResult], None]


@dataclass(frozen=True, slots=True)
class Refused:
    """A record that can never be folded: ``reason`` is ``undecodable_event`` or
    ``tampered_event``, ``detail`` says what was wrong."""

    record: Record
    reason: str
    detail: str


#: Handles a batch's refused records before its parts are handed on.
Refuse: TypeAlias = Callable[[list[Refused]], Awaitable[None]]


class Retry(Protocol):
    """Runs an action named ``what`` (for the log), retrying it or not."""

    def __call__(self, action: Callable[[], Awaitable[T]], what: str) -> Awaitable[T]: ...


async def retry_forever(action: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``action`` until it succeeds, backing off exponentially between tries."""
    delay = 0.2
    attempt = 1
    while True:
        try:
            return await action()
        except Exception as exc:
            PROJECTOR_RETRIES.inc()
            log.warning(f"{what} failed; retrying", extra={"error": repr(exc), "attempt": attempt})
            await asyncio.sleep(delay)
            delay, attempt = min(delay * 2, MAX_BACKOFF_S), attempt + 1


async def once(action: Callable[[], Awaitable[T]], what: str) -> T:
    """Run ``action`` once: its failure is the caller's."""
    return await action()


class BatchRunner:
    """Prepares batches and writes them in two stages joined by bounded queues.

    :meth:`handle` *prepares* a batch (decode, open, refuse the poison) and hands it on, cut by
    partition, to ``writers`` writer tasks; each writes its parts in order, one transaction
    each. So the next batch is decoded while PostgreSQL writes, and one writer folds while
    another waits for PostgreSQL. A person's events share a partition (the key is the subject
    id), so no two writers touch the same subject, and each transaction locks only its own
    partitions' offset rows.

    A handed-on part is not yet stored, but nothing counts it as done before its transaction
    commits: the offsets that count are the ones that transaction writes. A write that fails
    (only possible when ``retry`` gives up) stops all writing; :meth:`handle` and
    :meth:`drain` raise it.
    """

    def __init__(
        self,
        store: SubscriberStore,
        keys: KeyStore,
        refuse: Refuse,
        written: Written,
        *,
        retry: Retry,
        writers: int,
        slot: Slot | None = None,
        depth: int = 1,
    ) -> None:
        """``slot``: a partition's writer (default: partition modulo ``writers``).
        ``depth``: prepared parts that may wait for each writer (memory: one batch each)."""
        self._store = store
        self._keys = keys
        self._refuse = refuse
        self._written = written
        self._retry = retry
        self._slot = slot or (lambda partition: partition % writers)
        self._queues: list[asyncio.Queue[Part]] = [
            asyncio.Queue(maxsize=depth) for _ in range(writers)
        ]
        self._writers: list[asyncio.Task[None]] = []
        self._failure: BaseException | None = None

    async def start(self) -> None:
        self._writers = [
            asyncio.create_task(self._write_all(queue), name=f"projection-writer-{n}")
            for n, queue in enumerate(self._queues)
        ]

    async def handle(self, batch: Batch) -> None:
        """Prepare a batch and queue its parts for the writers (waits while a queue is full)."""
        self._check()
        started = time.perf_counter()
        good = await self._prepare(batch.records)
        for queue, part in zip(
            self._queues, split(batch, good, self._slot, len(self._queues), started), strict=True
        ):
            if part.ends:
                await queue.put(part)

    async def drain(self) -> None:
        """Wait until every handed-on part is written; raise the failure that stopped it."""
        self._check()
        for queue in self._queues:
            await queue.join()
        self._check()

    async def stop(self) -> None:
        """End the writers, written or not (a part not written has not moved its offsets)."""
        for writer in self._writers:
            writer.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        self._writers = []

    def _check(self) -> None:
        if self._failure is not None:
            raise self._failure
        if not self._writers or any(writer.done() for writer in self._writers):
            raise RuntimeError("the batch runner's writers are not running")

    async def _prepare(self, records: Sequence[Record]) -> list[LedgerRecord]:
        decoded: list[tuple[Record, LedgerRecord]] = []
        refused = []
        for record in records:
            try:
                decoded.append((record, decode_record(record)))
            except (ValueError, ValidationError) as exc:
                refused.append(Refused(record, "undecodable_event", str(exc)))
        results = await self._retry(
            lambda: open_all([r for _, r in decoded], self._keys), "reading data keys"
        )
        good: list[LedgerRecord] = []
        for (record, _), result in zip(decoded, results, strict=True):
            if isinstance(result, TamperedError):
                refused.append(Refused(record, "tampered_event", str(result)))
            else:
                good.append(result)
        if refused:
            await self._refuse(refused)
        return good

    async def _write_all(self, queue: asyncio.Queue[Part]) -> None:
        """Write the queue's parts in order; after a failure, only empty the queue (so no one
        waits on it) until the runner is stopped."""
        while True:
            part = await queue.get()
            try:
                if self._failure is None:
                    await self._write(part)
            except Exception as exc:
                self._failure = exc
            finally:
                queue.task_done()

    async def _write(self, part: Part) -> None:
        result = await self._retry(
            lambda: self._store.apply(part.good, part.ends), "projecting a batch"
        )
        self._written(part, result)
