"""The peer: the consent endpoint a team would write by hand instead of the ledger, no Kafka.

One asyncpg transaction per request: an ``INSERT`` of the events into an audit table and an
``INSERT ... ON CONFLICT DO UPDATE`` merging each event's purpose into the subject's JSONB
state. A batch is the same two statements over ``unnest`` arrays, so a request costs the same
round trips whatever it carries. It validates with the ledger's own submission models, so
that the comparison is about what happens after validation (:mod:`tools.bench.peer`).

Run in a process of its own (``python -m tools.bench.peer_app DATABASE_URL SCHEMA PORT``), on
uvicorn with uvloop and httptools as intake runs, so that it has the core the load generator
does not use, as intake has.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
import uvicorn
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from services.intake.http import BatchIn

#: Intake's pool size (``projections.db.create_pool``), so that both wait alike for a connection.
POOL_SIZE = 10


def schema_sql(schema: str) -> str:
    """The peer's two tables: the audit trail, keyed as a ledger would be, and the state."""
    return f"""
        CREATE SCHEMA {schema};
        CREATE TABLE {schema}.consent_audit (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            event_id uuid NOT NULL UNIQUE,
            subject_id text NOT NULL,
            type text NOT NULL,
            purpose text,
            occurred_at timestamptz NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now(),
            payload jsonb NOT NULL
        );
        CREATE INDEX ON {schema}.consent_audit (subject_id, occurred_at);
        CREATE TABLE {schema}.consent_state (
            subject_id text PRIMARY KEY,
            purposes jsonb NOT NULL,
            updated_at timestamptz NOT NULL
        );
    """


def statements(schema: str) -> tuple[str, str]:
    """The audit insert and the state upsert, each one set-based statement.

    The upsert groups a request's events by subject (a row may be changed once per statement;
    the latest event of a purpose wins) and takes the rows in subject order, so that
    concurrent requests lock shared subjects in one order and cannot deadlock."""
    audit = f"""
        INSERT INTO {schema}.consent_audit
            (event_id, subject_id, type, purpose, occurred_at, payload)
        SELECT * FROM unnest(
            $1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::jsonb[])
    """
    upsert = f"""
        INSERT INTO {schema}.consent_state AS s (subject_id, purposes, updated_at)
        SELECT subject_id,
               jsonb_object_agg(purpose, jsonb_build_object(
                   'status', type, 'event_id', event_id, 'occurred_at', occurred_at)
                   ORDER BY occurred_at),
               now()
        FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
            AS e(event_id, subject_id, type, purpose, occurred_at)
        WHERE purpose IS NOT NULL
        GROUP BY subject_id
        ORDER BY subject_id
        ON CONFLICT (subject_id) DO UPDATE
            SET purposes = s.purposes || EXCLUDED.purposes, updated_at = EXCLUDED.updated_at
    """
    return audit, upsert


def columns(submissions: Sequence[AnySubmission]) -> tuple[list[Any], ...]:
    """The statements' arrays: a fresh event id per event, as the ledger gives one."""
    return (
        [uuid.uuid4() for _ in submissions],
        [s.subject_id for s in submissions],
        [s.type for s in submissions],
        [getattr(s, "purpose", None) for s in submissions],
        [s.occurred_at for s in submissions],
        [s.model_dump_json() for s in submissions],
    )


def create_app(database_url: str, schema: str) -> Starlette:
    """The two endpoints, at intake's paths, answering 202 with the events' ids."""
    audit, upsert = statements(schema)
    pool: asyncpg.Pool[Any] | None = None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        nonlocal pool
        pool = await asyncpg.create_pool(database_url, min_size=POOL_SIZE, max_size=POOL_SIZE)
        try:
            yield
        finally:
            await pool.close()

    async def store(submissions: Sequence[AnySubmission]) -> Response:
        if any(s.subject_id is None for s in submissions):  # the peer keeps no identity index
            return Response(b'{"detail":"subject_id required"}', 422)
        arrays = columns(submissions)
        assert pool is not None
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(audit, *arrays)
            await conn.execute(upsert, *arrays[:5])
        receipts = [{"event_id": str(event_id)} for event_id in arrays[0]]
        return Response(orjson.dumps({"events": receipts}), 202, media_type="application/json")

    async def single(request: Request) -> Response:
        try:
            submission = SUBMISSION_ADAPTER.validate_json(await request.body())
        except ValidationError as exc:
            return Response(exc.json(), 422, media_type="application/json")
        return await store([submission])

    async def batch(request: Request) -> Response:
        try:
            submissions = BatchIn.model_validate_json(await request.body()).events
        except ValidationError as exc:
            return Response(exc.json(), 422, media_type="application/json")
        return await store(submissions)

    routes = [
        Route("/v1/events", single, methods=["POST"]),
        Route("/v1/events/batch", batch, methods=["POST"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def main(argv: Sequence[str]) -> None:
    database_url, schema, port = argv
    app = create_app(database_url, schema)
    uvicorn.run(
        app, host="127.0.0.1", port=int(port), loop="uvloop", http="httptools",
        log_config=None, access_log=False,
    )  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
