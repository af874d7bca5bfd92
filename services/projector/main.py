"""Composition root of the projector: the FastStream consumer plus the read API."""

from __future__ import annotations

import os
import socket
from typing import Any

from aiokafka import ConsumerRecord
from fastapi import FastAPI
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import Consumer, KafkaMessage

from projections.db import create_pool
from projections.migrations import apply as apply_migrations
from projections.store import SubscriberStore
from services.app import service_app
from services.config import Settings
from services.messaging.appender import Appender
from services.ops import Readiness
from services.projector.as_of import as_of_router
from services.projector.consumer import Projector, SeekToStoredOffsets
from services.projector.http import subjects_router


def build_broker(settings: Settings, projector: Projector, store: SubscriberStore) -> KafkaBroker:
    """The FastStream broker with one batch subscriber on the ledger topic.

    ``AckPolicy.MANUAL`` with no ack call means FastStream never commits to Kafka: the offsets
    that count are the ones the store keeps in PostgreSQL.
    """
    broker = KafkaBroker(settings.kafka_bootstrap, logger=None)
    holder: dict[str, Any] = {}
    subscriber = broker.subscriber(
        settings.ledger_topic,
        group_id=settings.projector_group,
        batch=True,
        max_records=settings.projector_batch_max,
        batch_timeout_ms=settings.projector_batch_timeout_ms,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        ack_policy=AckPolicy.MANUAL,
        listener=SeekToStoredOffsets(store, lambda: holder["subscriber"].consumer),
    )
    holder["subscriber"] = subscriber

    @subscriber
    async def on_batch(message: KafkaMessage, consumer: Consumer) -> None:
        records: tuple[ConsumerRecord[bytes, bytes], ...] = message.raw_message
        if records:
            await projector.handle(records, consumer)

    return broker


def create_app(settings: Settings) -> FastAPI:
    """The projector ASGI application; it starts consuming when the app starts."""
    pool = create_pool(settings.database_url)
    store = SubscriberStore(pool, settings.ledger_topic)
    dead_letters = Appender(
        settings.kafka_bootstrap,
        f"consent-ledger-projector-dlq-{socket.gethostname()}-{os.getpid()}",
        timeout_s=settings.produce_timeout_s,
    )
    projector = Projector(store, dead_letters, settings.dead_letter_topic)

    return service_app(
        title="consent-ledger projector",
        description="Current state and history of data subjects, folded from the ledger.",
        pool=pool,
        readiness=Readiness(settings.kafka_bootstrap, pool),
        components=[dead_letters, build_broker(settings, projector, store)],
        routers=[subjects_router(pool), as_of_router(pool)],
        before_start=lambda: apply_migrations(settings.database_url),
    )
