"""The projector: consumes the ledger in batches and folds it into PostgreSQL.

Kafka offsets are never committed to Kafka: they are stored by the store in the same
transaction as the rows, and every assigned partition is sought to its stored offset. So a
redelivered batch, a second instance, or a crash at any instant changes nothing. A record that
can never be decoded goes to the dead-letter topic (with its origin and the reason) and its
position is passed; any other failure is retried with backoff, never skipped.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any, TypeAlias

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, ConsumerRecord
from aiokafka.structs import TopicPartition
from pydantic import ValidationError

from events.catalog import AnyEvent
from events.codec import DecodeError, decode_raw
from events.sealing import DataKey, TamperedError, open_event
from projections.store import PROJECTION, LedgerRecord, SubscriberStore
from services.messaging.appender import Appender
from services.messaging.dead_letters import dead_letter
from services.metrics import (
    DEAD_LETTERS,
    PROJECTION_LAG,
    PROJECTOR_BATCH_RECORDS,
    PROJECTOR_BATCH_SECONDS,
    PROJECTOR_RETRIES,
)
from services.privacy.keystore import KeyRef, KeyStore

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 30.0
Record: TypeAlias = ConsumerRecord[bytes, bytes]


def decode_record(record: Record) -> LedgerRecord:
    """A ledger record as the store wants it; raises ``ValueError`` when it is poison."""
    try:
        payload = orjson.loads(record.value or b"")
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise DecodeError("an event must be a JSON object")
    return LedgerRecord(
        record.partition, record.offset, decode_raw(payload), payload, record.value or b""
    )


def sealed_ref(event: AnyEvent) -> KeyRef | None:
    """Which data key opens the event's personal section, if it has one."""
    return (event.subject_id, event.sealed.key_generation) if event.sealed else None


def opened(record: LedgerRecord, keys: Mapping[KeyRef, DataKey]) -> LedgerRecord:
    """The record with its personal section opened; a destroyed key leaves it empty (erased).
    Raises :class:`TamperedError` when the ciphertext or what it is bound to was changed."""
    ref = sealed_ref(record.event)
    if ref is None or ref not in keys:
        return record
    return replace(record, event=open_event(record.event, keys[ref]))


async def open_all(
    records: Sequence[LedgerRecord], keys: KeyStore
) -> list[LedgerRecord | TamperedError]:
    """Each record opened (one key lookup for all), or why it was refused."""
    refs = {ref for r in records if (ref := sealed_ref(r.event)) is not None}
    found = await keys.find_exact(refs)
    out: list[LedgerRecord | TamperedError] = []
    for record in records:
        try:
            out.append(opened(record, found))
        except TamperedError as exc:
            out.append(exc)
    return out


async def retry_forever(action: Callable[[], Any], what: str) -> Any:
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


class Projector:
    """Handles one consumed batch of ledger records."""

    def __init__(
        self, store: SubscriberStore, keys: KeyStore, dead_letters: Appender, dlq_topic: str
    ) -> None:
        self._store = store
        self._keys = keys
        self._dead_letters = dead_letters
        self._dlq_topic = dlq_topic

    async def handle(self, records: Sequence[Record], consumer: AIOKafkaConsumer | None) -> None:
        started = time.perf_counter()
        decoded: list[tuple[Record, LedgerRecord]] = []
        poison = []
        for record in records:
            try:
                decoded.append((record, decode_record(record)))
            except (ValueError, ValidationError) as exc:
                poison.append(dead_letter(record, self._dlq_topic, "undecodable_event", str(exc)))
        results = await retry_forever(
            lambda: open_all([r for _, r in decoded], self._keys), "reading data keys"
        )
        good: list[LedgerRecord] = []
        for (record, _), result in zip(decoded, results, strict=True):
            if isinstance(result, TamperedError):
                poison.append(dead_letter(record, self._dlq_topic, "tampered_event", str(result)))
            else:
                good.append(result)
        if poison:
            await retry_forever(lambda: self._dead_letters.append(poison), "dead-lettering")
            DEAD_LETTERS.labels("projector").inc(len(poison))
        ends = _ends(records)
        result = await retry_forever(lambda: self._store.apply(good, ends), "projecting a batch")
        PROJECTOR_BATCH_RECORDS.observe(len(records))
        PROJECTOR_BATCH_SECONDS.observe(time.perf_counter() - started)
        if consumer is not None:
            _record_lag(consumer, records[0].topic, ends)
        log.debug(
            "batch projected",
            extra={"records": len(records), "applied": result.applied, "skipped": result.skipped},
        )


def _ends(records: Sequence[Record]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for record in records:
        ends[record.partition] = max(ends.get(record.partition, 0), record.offset + 1)
    return ends


def _record_lag(consumer: AIOKafkaConsumer, topic: str, ends: dict[int, int]) -> None:
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
