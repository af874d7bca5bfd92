"""Composition root of the intake service: wires HTTP, Kafka and PostgreSQL together."""

from __future__ import annotations

import os
import socket

from fastapi import FastAPI

from events.register import load_register
from projections.db import create_pool
from services.access.http import Guard, tokens_router
from services.access.tokens import TokenStore
from services.app import service_app
from services.config import Settings
from services.intake.admission import Admission
from services.intake.http import (
    BodyLimit,
    count_rejections,
    intake_call,
    intake_router,
)
from services.intake.idempotency import IdempotencyStore
from services.intake.policy import LedgerPolicy
from services.intake.postgres import PostgresAdmission
from services.intake.rights import rights_router
from services.intake.service import IntakeService
from services.intake.topic_intake import TopicIntake, Translator
from services.messaging.appender import service_appender
from services.messaging.unreachable import unreachable
from services.ops import Readiness
from services.privacy.history import HistoryReader
from services.privacy.identity import IdentityIndex
from services.privacy.keystore import KeyStore
from services.privacy.secrets import load_secrets

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
    appender = service_appender(settings, transactional_id(settings))
    register = load_register(settings.register_file)
    secrets = load_secrets(settings)
    keys = KeyStore(pool, secrets.master)
    claims = IdempotencyStore(pool)
    admission = Admission(
        PostgresAdmission(pool, claims), LedgerPolicy(register), IdentityIndex(secrets.identity)
    )
    service = IntakeService(appender, claims, admission, settings.ledger_topic, keys)
    call = intake_call(service)
    tokens = TokenStore(pool)
    guard = Guard(tokens)

    app = service_app(
        title="consent-ledger intake",
        description="Record consent events; every answer comes after Kafka acknowledged them.",
        pool=pool,
        readiness=Readiness(settings.kafka_options(), pool),
        components=[
            appender,
            TopicIntake(settings, appender, Translator(settings, admission, keys)),
        ],
        routers=[
            intake_router(call, guard),
            rights_router(call, pool, register, guard, HistoryReader(pool, keys)),
            tokens_router(tokens, guard),
        ],
        on_rejected=count_rejections,
        kafka_trouble=lambda exc: unreachable(settings, exc),
    )
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    return app
