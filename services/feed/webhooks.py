"""Delivers feed changes to the configured webhooks: signed POSTs, retried with exponential
backoff, dead-lettered (``feed_webhook_dead_letters``, with the last error) after the last try.

Each (webhook, subject) has one pending delivery: the latest change (the publisher replaces an
older one that was not delivered yet). Rows are not locked while the POSTs are in flight, and a
result is written only if the row still holds the version that was sent, so a newer change that
arrived meanwhile is delivered next, never lost. One deliverer works at a time (advisory lock).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import orjson

from projections.db import Conn
from services.config import Webhook
from services.feed.signing import DELIVERY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, signature

log = logging.getLogger(__name__)

_LOCK_ID = 7_263_006
MAX_BACKOFF_S = 3600.0
#: POSTs in flight at once: a batch is never larger, so none waits for a free connection
#: (a wait would count against the timeout, and so as a failed attempt).
CONCURRENCY = 100
_DUE = """
SELECT webhook, subject_id, version, body, attempts FROM feed_webhook_deliveries
WHERE next_attempt_at <= now() AND webhook = ANY($1::text[])
ORDER BY next_attempt_at LIMIT $2
"""
_MATCH = "d.webhook = x.webhook AND d.subject_id = x.subject_id AND d.version = x.version"
_DELIVERED = f"""
DELETE FROM feed_webhook_deliveries AS d
USING unnest($1::text[], $2::text[], $3::bigint[]) AS x(webhook, subject_id, version)
WHERE {_MATCH}
"""
_RETRY = f"""
UPDATE feed_webhook_deliveries AS d
SET attempts = d.attempts + 1, next_attempt_at = now() + x.delay * interval '1 second',
    last_error = x.error
FROM unnest($1::text[], $2::text[], $3::bigint[], $4::float8[], $5::text[])
     AS x(webhook, subject_id, version, delay, error)
WHERE {_MATCH}
"""
_DEAD = f"""
WITH gone AS (
    DELETE FROM feed_webhook_deliveries AS d
    USING unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
          AS x(webhook, subject_id, version, error)
    WHERE {_MATCH}
    RETURNING d.webhook, d.subject_id, d.version, d.body, d.attempts, x.error
)
INSERT INTO feed_webhook_dead_letters (webhook, subject_id, version, body, attempts, reason)
SELECT webhook, subject_id, version, body, attempts + 1, error FROM gone
"""


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one POST came to: ``error`` is None when the receiver answered 2xx."""

    row: asyncpg.Record
    error: str | None


class WebhookDeliverer:
    """POSTs due deliveries and records each outcome, one batch per call."""

    def __init__(
        self,
        pool: asyncpg.Pool[Any],
        webhooks: Sequence[Webhook],
        client: httpx.AsyncClient,
        *,
        max_attempts: int,
        backoff_s: float,
        batch_max: int,
    ) -> None:
        self._pool = pool
        self._secrets = {str(w.url): w.secret for w in webhooks}
        self._client = client
        self._max_attempts = max_attempts
        self._backoff_s = backoff_s
        self._batch_max = batch_max

    async def deliver_once(self) -> int:
        """Try every due delivery of one batch; returns how many were tried."""
        if not self._secrets:
            return 0
        async with self._pool.acquire() as conn, conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", _LOCK_ID):
                return 0
            rows = await conn.fetch(_DUE, list(self._secrets), self._batch_max)
            outcomes = await asyncio.gather(*(self._post(row) for row in rows))
            await self._record(conn, outcomes)
        return len(rows)

    async def _post(self, row: asyncpg.Record) -> Outcome:
        body = orjson.dumps(row["body"])
        timestamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: signature(self._secrets[row["webhook"]], timestamp, body),
            DELIVERY_HEADER: f"{row['subject_id']}:{row['version']}",
        }
        try:
            answer = await self._client.post(row["webhook"], content=body, headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(row, f"{type(exc).__name__}: {exc}"[:2000])
        if answer.is_success:
            return Outcome(row, None)
        return Outcome(row, f"HTTP {answer.status_code}: {answer.text[:500]}")

    async def _record(self, conn: Conn, outcomes: Sequence[Outcome]) -> None:
        delivered = [o.row for o in outcomes if o.error is None]
        failed = [o for o in outcomes if o.error is not None]
        dead = [o for o in failed if o.row["attempts"] + 1 >= self._max_attempts]
        retry = [o for o in failed if o.row["attempts"] + 1 < self._max_attempts]
        if delivered:
            await conn.execute(_DELIVERED, *_keys(delivered))
        if retry:
            delays = [min(self._backoff_s * 2 ** o.row["attempts"], MAX_BACKOFF_S) for o in retry]
            errors = [o.error for o in retry]
            await conn.execute(_RETRY, *_keys([o.row for o in retry]), delays, errors)
        if dead:
            await conn.execute(_DEAD, *_keys([o.row for o in dead]), [o.error for o in dead])
            for o in dead:
                log.warning(
                    "webhook delivery dead-lettered",
                    extra={"subject_id": o.row["subject_id"], "error": o.error},
                )


def _keys(rows: Sequence[asyncpg.Record]) -> tuple[list[str], list[str], list[int]]:
    return (
        [r["webhook"] for r in rows],
        [r["subject_id"] for r in rows],
        [r["version"] for r in rows],
    )
