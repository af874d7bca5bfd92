"""Idempotency keys of HTTP intake, kept in PostgreSQL.

A key is claimed before anything is appended, together with the event ids and recording time
that the request will use. A retry of a finished request gets the stored answer. A retry of a
request whose outcome is unknown (the intake failed or died mid-way) takes the claim over and
appends again *with the same event ids*, so even then the projections see each event once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from projections.db import Conn
from services.intake.ports import CLAIM_LEASE_S, Claim


class IdempotencyStore:
    """Claims, answers and releases idempotency keys."""

    def __init__(self, pool: asyncpg.Pool[Any]) -> None:
        self._pool = pool

    async def claim(
        self, key: str, digest: bytes, event_ids: list[UUID], recorded_at: datetime, conn: Conn
    ) -> Claim:
        """Claim the key on ``conn``, inside the caller's transaction: if the caller rolls back
        (the request is refused), no claim is left behind."""
        plan = {"event_ids": [str(i) for i in event_ids], "recorded_at": recorded_at.isoformat()}
        inserted = await conn.fetchval(
            "INSERT INTO intake_requests (idempotency_key, request_hash, status, response)"
            " VALUES ($1, $2, 'pending', $3) ON CONFLICT DO NOTHING RETURNING 1",
            key,
            digest,
            plan,
        )
        if inserted:
            return Claim("new", event_ids, recorded_at)
        row = await conn.fetchrow(
            "UPDATE intake_requests SET claimed_at = now()"
            " WHERE idempotency_key = $1 AND status = 'pending' AND request_hash = $2"
            "   AND claimed_at < now() - make_interval(secs => $3)"
            " RETURNING status, request_hash, response, true AS taken",
            key,
            digest,
            CLAIM_LEASE_S,
        ) or await conn.fetchrow(
            "SELECT status, request_hash, response, false AS taken FROM intake_requests"
            " WHERE idempotency_key = $1",
            key,
        )
        if row is None:  # released between our statements: let the caller try again
            return Claim("in_progress", [])
        if bytes(row["request_hash"]) != digest:
            return Claim("mismatch", [])
        stored = row["response"]
        if row["status"] == "done":
            return Claim("replay", [], response=stored)
        if not row["taken"]:
            return Claim("in_progress", [])
        return Claim(
            "new",
            [UUID(i) for i in stored["event_ids"]],
            datetime.fromisoformat(stored["recorded_at"]),
        )

    async def answered(self, key: str, digest: bytes) -> dict[str, Any] | None:
        """The stored answer of a finished request with this key and body, if there is one."""
        row = await self._pool.fetchrow(
            "SELECT response FROM intake_requests"
            " WHERE idempotency_key = $1 AND request_hash = $2 AND status = 'done'",
            key,
            digest,
        )
        return row["response"] if row is not None else None

    async def complete(self, key: str, response: dict[str, Any]) -> None:
        await self._pool.execute(
            "UPDATE intake_requests SET status = 'done', response = $2 WHERE idempotency_key = $1",
            key,
            response,
        )

    async def release(self, key: str) -> None:
        """Let the next retry take the key over at once, with the same event ids."""
        await self._pool.execute(
            "UPDATE intake_requests SET claimed_at = '-infinity'"
            " WHERE idempotency_key = $1 AND status = 'pending'",
            key,
        )
