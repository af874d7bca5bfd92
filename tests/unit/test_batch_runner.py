"""The batch runner the live projector and the replay share: what reaches the store, what is
refused, and how a failure that is not retried ends the run."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import pytest
from aiokafka import ConsumerRecord

from events.codec import encode
from projections.records import LedgerRecord
from projections.store import BatchResult, SubscriberStore
from services.privacy.keystore import KeyStore
from services.projection.batches import Batch, Part
from services.projection.runner import BatchRunner, Refused, once
from tests.samples import withdrawn_event


def record(partition: int, offset: int, value: bytes) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("ledger", partition, offset, 0, 0, b"k", value, None, 1, len(value), ())


class Store:
    """Keeps what each write was asked to apply; fails when told to."""

    def __init__(self, fail: bool = False) -> None:
        self.applied: list[tuple[list[int], dict[int, int]]] = []
        self._fail = fail

    async def apply(self, records: Sequence[LedgerRecord], ends: Mapping[int, int]) -> BatchResult:
        if self._fail:
            raise ConnectionError("PostgreSQL went away")
        self.applied.append(([r.offset for r in records], dict(ends)))
        return BatchResult(len(records), 0, 0)


class NoKeys:
    async def find_exact(self, refs: Iterable[Any]) -> dict[Any, Any]:
        return {}


def runner(store: Store, refused: list[Refused], written: list[Part]) -> BatchRunner:
    async def refuse(records: list[Refused]) -> None:
        refused.extend(records)

    return BatchRunner(
        cast(SubscriberStore, store),
        cast(KeyStore, NoKeys()),
        refuse,
        lambda part, result: written.append(part),
        retry=once,
        writers=2,
        slot={4: 0, 6: 1}.__getitem__,
    )


def test_each_writer_gets_its_partitions_and_the_poison_is_refused() -> None:
    store = Store()
    refused: list[Refused] = []
    written: list[Part] = []
    event = encode(withdrawn_event("crm-1"))
    batch = Batch([record(4, 0, event), record(6, 0, b"not an event"), record(6, 1, event)])
    batch.ends = {4: 1, 6: 3}  # a transaction marker at 6@2

    async def run() -> None:
        batches = runner(store, refused, written)
        await batches.start()
        try:
            await batches.handle(batch)
            await batches.drain()
        finally:
            await batches.stop()

    asyncio.run(run())
    assert sorted(store.applied) == [([0], {4: 1}), ([1], {6: 3})]
    assert [(r.record.offset, r.reason) for r in refused] == [(0, "undecodable_event")]
    assert sorted(len(part.records) for part in written) == [1, 2]


def test_a_write_that_is_not_retried_ends_the_run() -> None:
    async def run() -> None:
        batches = runner(Store(fail=True), [], [])
        await batches.start()
        try:
            await batches.handle(Batch.of([record(4, 0, encode(withdrawn_event()))]))
            await batches.drain()
        finally:
            await batches.stop()

    with pytest.raises(ConnectionError, match="PostgreSQL went away"):
        asyncio.run(run())
