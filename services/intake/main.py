"""Composition root of the intake service: wires HTTP, Kafka and PostgreSQL together."""

from __future__ import annotations

import os
import socket

from fastapi import FastAPI

from events.register import load_register
from projections.db import create_pool
from services.app import service_app
from services.config import Settings
from services.intake.http import (
    body_limit_middleware,
    count_rejections,
    intake_call,
    intake_router,
)
from services.intake.idempotency import IdempotencyStore
from services.intake.policy import LedgerPolicy, request_lookup
from services.intake.rights import rights_router
from services.intake.service import IntakeService
from services.intake.topic_intake import TopicIntake
from services.messaging.appender import Appender
from services.ops import Readiness

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
    register = load_register(settings.register_file)
    policy = LedgerPolicy(register, request_lookup(pool))
    service = IntakeService(appender, IdempotencyStore(pool), policy, settings.ledger_topic)
    call = intake_call(service)

    app = service_app(
        title="consent-ledger intake",
        description="Record consent events; every answer comes after Kafka acknowledged them.",
        pool=pool,
        readiness=Readiness(settings.kafka_bootstrap, pool),
        components=[appender, TopicIntake(settings, appender, policy)],
        routers=[intake_router(call), rights_router(call, pool, register)],
        on_rejected=count_rejections,
    )
    app.middleware("http")(body_limit_middleware(MAX_BODY_BYTES))
    return app
