"""Connecting to PostgreSQL: one pool factory, with ``jsonb`` read and written by orjson."""

from __future__ import annotations

from typing import Any, TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

#: The version byte that starts ``jsonb``'s binary wire format; the JSON text follows.
_JSONB_V1 = b"\x01"


def encode_jsonb(value: Any) -> bytes:
    """A Python value as ``jsonb`` on the wire; ``bytes`` are taken as JSON text already (the
    mirror stores an event's bytes as the log holds them, without encoding them again)."""
    return _JSONB_V1 + (value if isinstance(value, bytes) else orjson.dumps(value))


def decode_jsonb(data: bytes) -> Any:
    return orjson.loads(data[1:])


async def _init_connection(conn: asyncpg.Connection[Any]) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=encode_jsonb, decoder=decode_jsonb, schema="pg_catalog", format="binary"
    )


def create_pool(
    database_url: str, *, max_size: int = 10, schema: str | None = None
) -> asyncpg.Pool[Any]:
    """A pool whose connections speak ``jsonb`` as Python values; ``await`` it to open it.

    Built without I/O, so an application can wire its parts first and connect when it starts.
    ``schema`` makes it the only schema unqualified names resolve to (a replay's tables).
    """
    return asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"search_path": schema} if schema else None,
    )


async def _keep_session(conn: asyncpg.Connection[Any]) -> None:
    """Skip asyncpg's reset query on every release (``RESET ALL``, ``UNLISTEN *``, advisory
    unlocks): one round trip per pooled call, about a tenth of intake's CPU in a py-spy profile
    (docs/performance.md). Nothing here keeps session state: no LISTEN, no SET, only
    transaction-scoped advisory locks; asyncpg still rolls back a transaction left open."""


#: A connection, whether taken from a pool or opened directly.
Conn: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
