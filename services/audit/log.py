"""Reading the whole ledger topic the way an auditor does: a plain read_committed consumer."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

Record: TypeAlias = ConsumerRecord[bytes, bytes]


async def iterate_log(kafka: Mapping[str, Any], topic: str) -> AsyncIterator[Record]:
    """Every committed record of ``topic``, from offset 0 to its end when the read began, in
    offset order within each partition. No consumer group, nothing committed."""
    admin = AIOKafkaAdminClient(**kafka)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    if described.get("error_code"):
        raise LookupError(f"topic {topic!r} cannot be read (Kafka error {described['error_code']})")
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(**kafka, isolation_level="read_committed", enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        while [tp for tp in partitions if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        yield record
    finally:
        await consumer.stop()


async def read_log(kafka: Mapping[str, Any], topic: str) -> list[Record]:
    """The whole topic at once, by partition and offset (for small topics: tests, tools)."""
    records = [record async for record in iterate_log(kafka, topic)]
    return sorted(records, key=lambda r: (r.partition, r.offset))
