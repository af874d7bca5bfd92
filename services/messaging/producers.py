"""Idempotent Kafka producers that start cleanly or not at all, and stop without raising."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiokafka import AIOKafkaProducer


async def started_producer(**options: Any) -> AIOKafkaProducer:
    """An idempotent, ``acks=all`` producer, started; a failed start leaves nothing running."""
    producer = AIOKafkaProducer(enable_idempotence=True, acks="all", **options)
    try:
        await producer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 2)
        raise
    return producer


async def stop_quietly(producer: AIOKafkaProducer | None) -> None:
    """Stop a producer that may be broken already (it is being replaced)."""
    if producer is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), 5)
