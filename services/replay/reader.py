"""Reading the ledger topic from its first record up to given offsets, in large batches."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from services.projection.batches import Batch


class ReplayError(Exception):
    """The replay cannot run as asked; the message says why."""


async def read_until(
    kafka: Mapping[str, Any], topic: str, ends: Mapping[int, int], batch_size: int
) -> AsyncIterator[Batch]:
    """Every committed record before ``ends[partition]``, from the start of each partition.

    No consumer group: nothing is committed to Kafka, and the live projector is not disturbed.
    """
    wanted = {TopicPartition(topic, p): end for p, end in ends.items() if end > 0}
    if not wanted:
        return
    consumer = AIOKafkaConsumer(
        **kafka,
        isolation_level="read_committed",
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    await consumer.start()
    try:
        consumer.assign(list(wanted))
        await consumer.seek_to_beginning(*wanted)
        available = await consumer.end_offsets(list(wanted))
        short = {tp.partition: available[tp] for tp, end in wanted.items() if available[tp] < end}
        if short:
            raise ReplayError(
                f"the topic {topic} ends before the projector's stored offsets "
                f"(partition: last stable offset {short}, stored {dict(ends)}); "
                "was it recreated?"
            )
        pending = set(wanted)
        while pending:
            batch = Batch()
            while pending and len(batch.records) < batch_size:
                fetched = await consumer.getmany(
                    *pending, timeout_ms=1000, max_records=batch_size - len(batch.records)
                )
                for tp, records in fetched.items():
                    kept = [r for r in records if r.offset < wanted[tp]]
                    batch.records.extend(kept)
                    if kept:
                        batch.ends[tp.partition] = kept[-1].offset + 1
                for tp in list(pending):
                    if await consumer.position(tp) >= wanted[tp]:
                        pending.discard(tp)
                        batch.ends[tp.partition] = wanted[tp]
            yield batch
    finally:
        await consumer.stop()
