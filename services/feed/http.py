"""HTTP exports for mail tools: the mailing list of a purpose, and the projection's suppressions.

Both stream NDJSON (default) or CSV, read in pages of :data:`PAGE` subjects inside one
read-only repeatable-read transaction (one consistent snapshot per response), and page with a
keyset cursor: ``after`` is the last ``subject_id`` a client received, ``limit`` caps a response.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
import orjson
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from services.access.http import AUTH_ERRORS, Guard
from services.exports import Format, FormatQuery, SqlText, known_purpose, negotiated

PAGE = 1000
MEDIA_TYPES: dict[Format, str] = {"ndjson": "application/x-ndjson", "csv": "text/csv"}
After = Annotated[
    SqlText | None, Query(description="Cursor: the last subject_id received; start after it.")
]
Limit = Annotated[int | None, Query(ge=1, description="At most this many subjects (all).")]


class MailingListEntry(BaseModel):
    """One person who may be e-mailed for the purpose now."""

    subject_id: str
    email: str
    eligibility_reason: str
    valid_until: datetime | None


SuppressionReason = Literal["withdrawal", "objection", "restriction", "erasure"]


class ProjectedSuppression(BaseModel):
    """A subject that must not be mailed, for a reason of their own (from the projection)."""

    subject_id: str
    reason: SuppressionReason
    purpose: str | None
    since: datetime


#: Keyset pages in subject_id order. PostgreSQL estimates the plain boolean test as common, so it
#: reads the primary key in order from the cursor. ``purposes @> ...`` looked rare to it: it read
#: and sorted every eligible row again for each page (migration 006, docs/performance.md).
_MAILING_LIST = """
SELECT subject_id, email, purposes->$1 AS purpose FROM subscribers
WHERE (purposes->$1->'eligible')::boolean
  AND email IS NOT NULL
  AND (purposes->$1->>'valid_until' IS NULL OR (purposes->$1->>'valid_until')::timestamptz > $2)
  AND ($3::text IS NULL OR subject_id > $3)
ORDER BY subject_id LIMIT $4
"""
_SUPPRESSED = """
SELECT subject_id, purposes, restricted_since, erased_at FROM subscribers
WHERE (erased_at IS NOT NULL OR restricted_since IS NOT NULL
       OR jsonb_path_exists(purposes, '$.*.status ? (@ == "withdrawn" || @ == "objected")'))
  AND ($1::text IS NULL OR subject_id > $1)
ORDER BY subject_id LIMIT $2
"""
_BLOCKS: dict[str, SuppressionReason] = {"withdrawn": "withdrawal", "objected": "objection"}


def mailing_lists_router(
    pool: asyncpg.Pool[Any], purposes: Collection[str], guard: Guard
) -> APIRouter:
    """``GET /v1/mailing-lists/{purpose}``: who may be e-mailed for a purpose now."""
    router = APIRouter(
        tags=["mail tools"],
        responses=AUTH_ERRORS,
        dependencies=[guard.allow("mail_tool", "dpo")],
    )

    @router.get(
        "/v1/mailing-lists/{purpose}",
        summary="Everyone who may be e-mailed for a purpose now, with the address",
        response_class=StreamingResponse,
        responses={200: {"content": {MEDIA_TYPES["ndjson"]: {}, MEDIA_TYPES["csv"]: {}}}},
    )
    async def mailing_list(
        purpose: Annotated[SqlText, Path(description="A purpose id of the register.")],
        request: Request,
        after: After = None,
        limit: Limit = None,
        format: FormatQuery = None,
    ) -> StreamingResponse:
        """Eligible as of the request's time: a consent whose ``valid_until`` passed is left
        out even before its expiry is recorded. Ordered by subject_id."""
        known_purpose(purpose, purposes)
        now = datetime.now(UTC)

        def fetch(conn: Any, cursor: str | None, size: int) -> Any:
            return conn.fetch(_MAILING_LIST, purpose, now, cursor, size)

        fmt = negotiated(format, request)
        return _stream(pool, fetch, _mailing_entries, MailingListEntry, after, limit, fmt)

    return router


def projected_suppressions_router(pool: asyncpg.Pool[Any], guard: Guard) -> APIRouter:
    """``GET /v1/suppressions``: subjects the projection says must not be mailed, and why."""
    router = APIRouter(
        tags=["mail tools"],
        responses=AUTH_ERRORS,
        dependencies=[guard.allow("mail_tool", "crm", "dpo")],
    )

    @router.get(
        "/v1/suppressions",
        summary="Subjects not to be mailed for a reason of theirs (projection-based)",
        response_class=StreamingResponse,
        responses={200: {"content": {MEDIA_TYPES["ndjson"]: {}, MEDIA_TYPES["csv"]: {}}}},
    )
    async def suppressions(
        request: Request, after: After = None, limit: Limit = None, format: FormatQuery = None
    ) -> StreamingResponse:
        """One line per reason: a withdrawal or objection (with its purpose), a restriction,
        an erasure that no new consent followed (no purpose). By subject id only; ordered by
        subject_id. A line never names a subject and purpose that a mailing list names: a
        line with a purpose blocks that purpose, one without blocks them all."""

        def fetch(conn: Any, cursor: str | None, size: int) -> Any:
            return conn.fetch(_SUPPRESSED, cursor, size)

        fmt = negotiated(format, request)
        return _stream(pool, fetch, _suppressions, ProjectedSuppression, after, limit, fmt)

    return router


def _mailing_entries(row: asyncpg.Record) -> list[MailingListEntry]:
    purpose = row["purpose"]
    until = purpose.get("valid_until")
    return [
        MailingListEntry(
            subject_id=row["subject_id"],
            email=row["email"],
            eligibility_reason=purpose["eligibility_reason"],
            valid_until=datetime.fromisoformat(until) if until else None,
        )
    ]


def _suppressions(row: asyncpg.Record) -> list[ProjectedSuppression]:
    subject = row["subject_id"]
    out = [
        ProjectedSuppression(
            subject_id=subject,
            reason=_BLOCKS[p["status"]],
            purpose=name,
            since=datetime.fromisoformat(p["changed_at"]),
        )
        for name, p in sorted(row["purposes"].items())
        if p["status"] in _BLOCKS
    ]
    if row["restricted_since"] is not None:
        out.append(ProjectedSuppression(
            subject_id=subject, reason="restriction", purpose=None, since=row["restricted_since"]
        ))  # fmt: skip
    if row["erased_at"] is not None and not any(
        p["eligible"] for p in row["purposes"].values()
    ):  # an erasure followed by a new explicit consent suppresses no more
        out.append(ProjectedSuppression(
            subject_id=subject, reason="erasure", purpose=None, since=row["erased_at"]
        ))  # fmt: skip
    return out


def _stream(
    pool: asyncpg.Pool[Any],
    fetch: Callable[[Any, str | None, int], Any],
    lines: Callable[[asyncpg.Record], Sequence[BaseModel]],
    model: type[BaseModel],
    after: str | None,
    limit: int | None,
    fmt: Format,
) -> StreamingResponse:
    """Stream the rows ``fetch`` pages through, each turned into ``lines``, as ``fmt``."""

    async def body() -> AsyncIterator[bytes]:
        if fmt == "csv":
            yield _csv([list(model.model_fields)])
        async with (
            pool.acquire() as conn,
            conn.transaction(isolation="repeatable_read", readonly=True),
        ):
            cursor, left = after, limit
            while left is None or left > 0:
                size = PAGE if left is None else min(PAGE, left)
                rows = await fetch(conn, cursor, size)
                items = [item for row in rows for item in lines(row)]
                if fmt == "csv":
                    yield _csv([list(i.model_dump(mode="json").values()) for i in items])
                else:
                    yield b"".join(orjson.dumps(i.model_dump(mode="json")) + b"\n" for i in items)
                if len(rows) < size:
                    return
                cursor = rows[-1]["subject_id"]
                left = None if left is None else left - len(rows)

    return StreamingResponse(body(), media_type=MEDIA_TYPES[fmt])


def _csv(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()
