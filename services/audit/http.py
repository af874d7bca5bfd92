"""``GET /v1/receipts/{event_id}``: the signed consent receipt of one event."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import APIRouter, Response

from events.codec import decode_raw
from events.register import Register
from services.access.http import AUTH_ERRORS, Guard
from services.audit.models import Receipt
from services.audit.receipts import ReceiptError, build_receipt, receipt_json
from services.errors import ProblemError

#: The mirror row of an event and the chain's hash at its (first) position.
_EVENT_AND_HASH = """
SELECT e.topic, e.partition, e."offset", e.payload, c.hash
FROM ledger_events e
JOIN ledger_chain c ON c.topic = e.topic AND c.partition = e.partition AND c."offset" = e."offset"
WHERE e.event_id = $1
"""


def receipts_router(
    pool: asyncpg.Pool[Any], register: Register, key: Ed25519PrivateKey, guard: Guard
) -> APIRouter:
    router = APIRouter(
        prefix="/v1/receipts",
        tags=["receipts"],
        responses=AUTH_ERRORS,
        dependencies=[guard.allow("dpo", "auditor")],
    )

    @router.get(
        "/{event_id}",
        summary="Signed consent receipt of a consent or objection event",
        response_class=Response,
        responses={
            200: {"model": Receipt, "content": {"application/json": {}}},
            404: {"description": "No such event projected yet, or not a consent event."},
        },
    )
    async def get_receipt(event_id: UUID) -> Response:
        """The receipt, signed with the ledger's key; verify it offline with
        ``consent-ledger receipt verify FILE --public-key KEY``."""
        row = await pool.fetchrow(_EVENT_AND_HASH, event_id)
        if row is None:
            raise ProblemError(404, "event_not_found", f"no event {event_id} in the chain yet")
        try:
            receipt = build_receipt(
                decode_raw(row["payload"]),
                topic=row["topic"],
                partition=row["partition"],
                offset=row["offset"],
                chain_hash=row["hash"],
                register=register,
                key=key,
            )
        except ReceiptError as exc:
            raise ProblemError(404, "no_receipt", str(exc)) from None
        return Response(receipt_json(receipt), media_type="application/json")

    return router
