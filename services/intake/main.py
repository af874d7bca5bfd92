"""Composition root of the intake service: wires HTTP, Kafka and PostgreSQL together."""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from projections.db import create_pool
from services.config import Settings
from services.errors import install_error_handlers
from services.intake.http import body_limit_middleware, count_rejections, intake_router
from services.intake.idempotency import IdempotencyStore
from services.intake.service import IntakeService
from services.intake.topic_intake import TopicIntake
from services.messaging.appender import Appender
from services.ops import Readiness, ops_router

MAX_BODY_BYTES = 8 * 1024 * 1024


def transactional_id(settings: Settings) -> str:
    """Unique per running intake process: two live producers must never share one."""
    return (
        settings.intake_transactional_id
        or f"consent-ledger-intake-{socket.gethostname()}-{os.getpid()}"
    )


def create_app(settings: Settings) -> FastAPI:
    """The intake ASGI application; Kafka and PostgreSQL are reached when it starts."""
    pool = create_pool(settings.database_url)
    appender = Appender(
        settings.kafka_bootstrap, transactional_id(settings), timeout_s=settings.produce_timeout_s
    )
    topic_intake = TopicIntake(settings, appender)
    readiness = Readiness(settings.kafka_bootstrap, pool)
    service = IntakeService(appender, IdempotencyStore(pool), settings.ledger_topic)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await pool
        await appender.start()
        await topic_intake.start()
        try:
            yield
        finally:
            await topic_intake.stop()
            await appender.stop()
            await readiness.close()
            await pool.close()

    app = FastAPI(
        title="consent-ledger intake",
        version="1",
        description="Record consent events; every answer comes after Kafka acknowledged them.",
        lifespan=lifespan,
    )
    app.middleware("http")(body_limit_middleware(MAX_BODY_BYTES))
    install_error_handlers(app, on_rejected=count_rejections)
    app.include_router(intake_router(service))
    app.include_router(ops_router(readiness))
    return app
