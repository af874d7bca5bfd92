"""The one way a service becomes an ASGI app: its parts start in order and stop in reverse."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg
from aiokafka.errors import KafkaConnectionError
from fastapi import APIRouter, FastAPI

from services.errors import RejectionHook, install_error_handlers
from services.ops import Readiness, ops_router

log = logging.getLogger(__name__)


class Component(Protocol):
    """A part with a lifetime: a producer, a consumer, a broker."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def service_app(
    *,
    title: str,
    description: str,
    pool: asyncpg.Pool[Any],
    readiness: Readiness,
    components: Sequence[Component],
    routers: Sequence[APIRouter],
    before_start: Callable[[], Awaitable[object]] | None = None,
    on_rejected: RejectionHook | None = None,
    kafka_trouble: Callable[[Exception], str],
) -> FastAPI:
    """A FastAPI app with the shared error shape and ``/healthz``, ``/readyz``, ``/metrics``.

    A part that cannot reach Kafka at start stops the start with ``kafka_trouble``'s account
    of it, logged as one line before the traceback."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if before_start is not None:
            await before_start()
        await pool
        started: list[Component] = []
        try:
            for component in components:
                await _start(component, kafka_trouble)
                started.append(component)
            yield
        finally:
            for component in reversed(started):
                await component.stop()
            await readiness.close()
            await pool.close()

    app = FastAPI(title=title, version="1", description=description, lifespan=lifespan)
    install_error_handlers(app, on_rejected)
    for router in [*routers, ops_router(readiness)]:
        app.include_router(router)
    return app


class KafkaUnreachableError(RuntimeError):
    """A service could not start: Kafka did not answer, or refused it."""


async def _start(component: Component, kafka_trouble: Callable[[Exception], str]) -> None:
    try:
        await component.start()
    except KafkaConnectionError as exc:
        message = kafka_trouble(exc)
        log.error("cannot start: %s", message)
        raise KafkaUnreachableError(message) from exc
