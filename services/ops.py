"""What every service exposes for operations: liveness, readiness, Prometheus metrics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

PROBE_TIMEOUT_S = 2.0


class Readiness:
    """Asks Kafka and PostgreSQL whether they answer, with a short timeout each."""

    def __init__(self, kafka: Mapping[str, Any], pool: asyncpg.Pool[Any]) -> None:
        self._kafka_options = dict(kafka)
        self._pool = pool
        self._admin: AIOKafkaAdminClient | None = None

    async def check(self) -> dict[str, str]:
        kafka, postgres = await asyncio.gather(self._kafka(), self._postgres())
        return {"kafka": kafka, "postgres": postgres}

    async def _kafka(self) -> str:
        try:
            if self._admin is None:
                admin = AIOKafkaAdminClient(**self._kafka_options, request_timeout_ms=2000)
                await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_S)
                self._admin = admin
            await asyncio.wait_for(self._admin.describe_cluster(), PROBE_TIMEOUT_S)
        except Exception as exc:
            await self.close()
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    async def _postgres(self) -> str:
        try:
            await asyncio.wait_for(self._pool.fetchval("SELECT 1"), PROBE_TIMEOUT_S)
        except Exception as exc:
            return f"unavailable: {type(exc).__name__}"
        return "ok"

    async def close(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), PROBE_TIMEOUT_S)


def ops_router(readiness: Readiness) -> APIRouter:
    """``/healthz`` (the process runs), ``/readyz`` (its dependencies answer), ``/metrics``."""
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: Kafka and PostgreSQL answer")
    async def readyz() -> JSONResponse:
        checks = await readiness.check()
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return router
