"""Reads of the projections, for the APIs and the jobs (one query each)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from projections.db import Conn
from projections.rows import state_from_row
from projections.state import SubjectState
from projections.store import LOAD_SUBJECTS


async def read_subject(pool: asyncpg.Pool[Any], subject_id: str) -> SubjectState | None:
    """Current state of one subject, or ``None`` if no event about them was projected."""
    row = await pool.fetchrow(LOAD_SUBJECTS, [subject_id])
    return state_from_row(row) if row is not None else None


async def read_history(pool: asyncpg.Pool[Any], subject_id: str) -> list[dict[str, Any]]:
    """Every event about one subject, in log order, as the mirror holds it."""
    rows = await pool.fetch(
        'SELECT partition, "offset", payload FROM ledger_events WHERE subject_id = $1'
        ' ORDER BY partition, "offset"',
        subject_id,
    )
    return [
        {"partition": r["partition"], "offset": r["offset"], "event": r["payload"]} for r in rows
    ]


#: What readers get of a request: its fields, not the marks the fold derives them from.
_REQUEST_FIELDS = """request_id, subject_id, "right", channel, written, signed, received_by,
    received_at, due_on, extended_due_on, status, identity_verified_at, answered_at, outcome,
    reasons, last_event_id"""


async def read_requests(
    pool: asyncpg.Pool[Any] | Conn,
    *,
    request_ids: list[UUID] | None = None,
    subject_id: str | None = None,
) -> list[asyncpg.Record]:
    """Received rights requests, oldest first: by id, by subject, or all. A request whose
    lifecycle events came before its receipt is kept for the fold alone: no reader sees it."""
    return await pool.fetch(
        f"SELECT {_REQUEST_FIELDS} FROM rights_requests WHERE received_at IS NOT NULL"
        "   AND ($1::uuid[] IS NULL OR request_id = ANY($1::uuid[]))"
        "   AND ($2::text IS NULL OR subject_id = $2)"
        " ORDER BY received_at, request_id, subject_id",
        request_ids,
        subject_id,
    )
