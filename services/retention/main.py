"""Composition root of the retention job: once (``consent-ledger retention run``) or on a timer
(``consent-ledger retention serve``).

The job appends through the same :class:`IntakeService` as HTTP intake (register checks, Art. 19
recipient notices, idempotency keys, Kafka transactions), so its events are indistinguishable
from any producer's and obey the same guarantees.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime

from events.register import load_register
from projections.db import create_pool
from services.config import Settings
from services.intake.admission import Admission
from services.intake.idempotency import IdempotencyStore
from services.intake.policy import LedgerPolicy
from services.intake.postgres import PostgresAdmission
from services.intake.service import IntakeService
from services.messaging.appender import service_appender
from services.privacy.identity import IdentityIndex
from services.privacy.keystore import KeyStore
from services.privacy.secrets import load_secrets
from services.retention.job import Report, RetentionJob

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 300.0


def transactional_id() -> str:
    """Unique per job instance: runs may overlap (even in one process), and two live producers
    sharing an id would fence each other. A crashed run's open transaction is aborted by the
    broker's short transaction timeout instead."""
    return f"consent-ledger-retention-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@asynccontextmanager
async def retention_job(settings: Settings) -> AsyncIterator[RetentionJob]:
    """A job wired to the settings' Kafka and PostgreSQL, closed on exit."""
    register = load_register(settings.register_file)
    pool = await create_pool(settings.database_url)
    appender = service_appender(settings, transactional_id())
    secrets = load_secrets(settings)
    claims = IdempotencyStore(pool)
    service = IntakeService(
        appender,
        claims,
        Admission(
            PostgresAdmission(pool, claims), LedgerPolicy(register), IdentityIndex(secrets.identity)
        ),
        settings.ledger_topic,
        KeyStore(pool, secrets.master),
    )
    await appender.start()
    try:
        yield RetentionJob(pool, service, register)
    finally:
        await appender.stop()
        await pool.close()


async def run_once(
    settings: Settings, now: datetime | None = None, *, dry_run: bool = False
) -> Report:
    """One run of the job; ``now`` defaults to the clock."""
    async with retention_job(settings) as job:
        return await job.run(now, dry_run=dry_run)


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def serve(
    settings: Settings, interval_s: float = DEFAULT_INTERVAL_S, stop: asyncio.Event | None = None
) -> None:
    """Run the job every ``interval_s`` until ``stop`` is set (default: SIGINT or SIGTERM).

    A failed run (Kafka or PostgreSQL away) is logged and tried again at the next tick; what it
    appended is kept, and its idempotency keys make the retry append only the rest.
    """
    stop = stop or _stop_on_signals()
    async with retention_job(settings) as job:
        while not stop.is_set():
            try:
                await job.run()
            except Exception as exc:
                log.error("retention run failed", extra={"error": repr(exc)})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_s)
    log.info("retention job stopped")
