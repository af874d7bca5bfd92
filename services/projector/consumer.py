"""The projector: consumes the ledger in batches and folds it into PostgreSQL.

Kafka offsets are never committed to Kafka: they are stored by the store in the same
transaction as the rows, and every assigned partition is sought to its stored offset. So a
redelivered batch, a second instance, or a crash at any instant changes nothing. A record that
can never be decoded goes to the dead-letter topic (with its origin and the reason) and its
position is passed; any other failure is retried with backoff, never skipped.

The batches go through the batch runner the replay uses too (:mod:`services.projection`); what
this module adds is the live source's side: dead letters, retries, metrics, lag, and the seeks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence

# aiokafka stays below FastStream here: FastStream has no hook to seek a partition on
# assignment to the offset PostgreSQL stores with the rows, nor to read its last stable offset.
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition

from projections.store import PROJECTION, BatchResult, SubscriberStore
from services.messaging.appender import Appender
from services.messaging.dead_letters import dead_letter
from services.metrics import (
    DEAD_LETTERS,
    PROJECTION_LAG,
    PROJECTOR_BATCH_RECORDS,
    PROJECTOR_BATCH_SECONDS,
)
from services.privacy.keystore import KeyStore
from services.projection.batches import Batch, Part, Record
from services.projection.runner import BatchRunner, Refused, retry_forever

log = logging.getLogger(__name__)


class Projector:
    """The live projector: consumed batches through the :class:`BatchRunner`, its refused
    records dead-lettered, every failure retried, each written part measured."""

    def __init__(
        self,
        store: SubscriberStore,
        keys: KeyStore,
        dead_letters: Appender,
        dlq_topic: str,
        *,
        writers: int = 2,
        depth: int = 1,
    ) -> None:
        """``depth``: prepared batches that may wait for each writer (memory: one batch each)."""
        self._dead_letters = dead_letters
        self._dlq_topic = dlq_topic
        self._consumer: AIOKafkaConsumer | None = None
        self._runner = BatchRunner(
            store,
            keys,
            self._dead_letter,
            self._measure,
            retry=retry_forever,
            writers=writers,
            depth=depth,
        )

    async def start(self) -> None:
        await self._runner.start()

    async def stop(self) -> None:
        """Write what was handed on (the consumer has stopped by now), then end the writers."""
        try:
            await self._runner.drain()
        finally:
            await self._runner.stop()

    async def handle(self, records: Sequence[Record], consumer: AIOKafkaConsumer | None) -> None:
        """Prepare a batch and queue its parts for the writers (waits while a queue is full);
        ``consumer`` tells the lag."""
        self._consumer = consumer
        await self._runner.handle(Batch.of(records))

    async def _dead_letter(self, refused: list[Refused]) -> None:
        letters = [dead_letter(r.record, self._dlq_topic, r.reason, r.detail) for r in refused]
        await retry_forever(lambda: self._dead_letters.append(letters), "dead-lettering")
        DEAD_LETTERS.labels("projector").inc(len(letters))

    def _measure(self, part: Part, result: BatchResult) -> None:
        PROJECTOR_BATCH_RECORDS.observe(len(part.records))
        PROJECTOR_BATCH_SECONDS.observe(time.perf_counter() - part.started)
        if self._consumer is not None:
            _record_lag(self._consumer, part.records[0].topic, part.ends)
        log.debug(
            "batch projected",
            extra={
                "records": len(part.records),
                "applied": result.applied,
                "skipped": result.skipped,
            },
        )


def _record_lag(consumer: AIOKafkaConsumer, topic: str, ends: Mapping[int, int]) -> None:
    for partition, end in ends.items():
        last = consumer.last_stable_offset(TopicPartition(topic, partition))
        if last is not None:
            PROJECTION_LAG.labels(PROJECTION, str(partition)).set(max(last - end, 0))


class SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]
    """On assignment, resume each partition where PostgreSQL says the projection stands."""

    def __init__(
        self, store: SubscriberStore, consumer: Callable[[], AIOKafkaConsumer | None]
    ) -> None:
        self._store = store
        self._consumer = consumer

    async def on_partitions_revoked(self, revoked: Collection[TopicPartition]) -> None:
        return None

    async def on_partitions_assigned(self, assigned: Collection[TopicPartition]) -> None:
        if not assigned:
            return
        stored = await retry_forever(
            lambda: self._store.claim_partitions(tp.partition for tp in assigned),
            "reading stored offsets",
        )
        consumer = self._consumer()
        if consumer is None:
            return
        for tp in assigned:
            consumer.seek(tp, stored[tp.partition])
        log.info(
            "partitions assigned",
            extra={"partitions": {tp.partition: stored[tp.partition] for tp in assigned}},
        )
