"""Table-by-table comparison of the live projections with a replay's.

Each side is streamed in primary-key order as ``(key, md5 of the row's text)``; a table's
checksum is the sha256 of that stream, and a merge of the two streams names the differing keys
in the same pass, so memory stays flat whatever the table's size. The live side is read inside
the snapshot taken when the replay started, so a projector running meanwhile changes nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from projections.store import PROJECTION
from services.replay.report import RowDifference, TableReport

#: The projections a replay rebuilds, and which rows of each are compared.
COMPARED: dict[str, str] = {
    "subscribers": "",
    "rights_requests": "",
    "recipient_notifications": "",
    "ledger_events": "",
    "projector_offsets": f"WHERE projection = '{PROJECTION}' AND topic = $1",
}
#: Columns that record when a row was written, not what the ledger says.
WALL_CLOCK = {("projector_offsets", "updated_at")}
_PREFETCH = 5000

_COLUMNS = """
SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
       t.typcategory = 'S' AS is_text,
       array_position(i.indkey::int2[], a.attnum) AS key_position
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True, slots=True)
class Shape:
    """A table's compared columns and primary key, read from the live schema's catalog."""

    table: str
    columns: list[str]
    key: list[str]
    key_types: list[str]
    text_keys: set[str]

    def rows_sql(self, schema: str) -> str:
        keys = ", ".join(quote(k) for k in self.key)
        order = ", ".join(
            quote(k) + (' COLLATE "C"' if k in self.text_keys else "") for k in self.key
        )
        row = ", ".join(quote(c) for c in self.columns)
        return (
            f"SELECT {keys}, md5(ROW({row})::text) AS row_md5"
            f" FROM {quote(schema)}.{quote(self.table)} {COMPARED[self.table]} ORDER BY {order}"
        )

    def values_sql(self, schema: str) -> str:
        """The compared columns as text, for the given keys (``$1..$n``: one array per key
        column)."""
        texts = ", ".join(f"{quote(c)}::text" for c in self.columns)
        keys = ", ".join(quote(k) for k in self.key)
        arrays = ", ".join(f"${n}::{t}[]" for n, t in enumerate(self.key_types, 1))
        return (
            f"SELECT {keys}, {texts} FROM {quote(schema)}.{quote(self.table)}"
            f" WHERE ({keys}) IN (SELECT * FROM unnest({arrays}))"
        )


async def shape_of(conn: asyncpg.Connection[Any], schema: str, table: str) -> Shape:
    rows = await conn.fetch(_COLUMNS, schema, table)
    if not rows:
        raise LookupError(f"no table {schema}.{table}")
    keyed = sorted((r["key_position"], r["name"]) for r in rows if r["key_position"] is not None)
    key = [name for _, name in keyed]
    types = {r["name"]: r["type"] for r in rows}
    return Shape(
        table=table,
        columns=[r["name"] for r in rows if (table, r["name"]) not in WALL_CLOCK],
        key=key,
        key_types=[types[k] for k in key],
        text_keys={r["name"] for r in rows if r["is_text"]},
    )


Row = tuple[tuple[Any, ...], str]


async def _stream(
    conn: asyncpg.Connection[Any], sql: str, args: Sequence[Any], digest: Any
) -> AsyncIterator[Row]:
    """``(key, row md5)`` in key order; feeds ``digest`` on the way (needs a transaction)."""
    async for record in conn.cursor(sql, *args, prefetch=_PREFETCH):
        key, row_md5 = tuple(record)[:-1], record["row_md5"]
        digest.update(repr((key, row_md5)).encode())
        yield key, row_md5


async def _merge(live: AsyncIterator[Row], replay: AsyncIterator[Row]) -> AsyncIterator[Row]:
    """The keys whose rows differ, with ``"live"``/``"replay"`` for a row on one side only and
    ``""`` for a row on both."""
    left = await anext(live, None)
    right = await anext(replay, None)
    while left is not None or right is not None:
        if right is None or (left is not None and left[0] < right[0]):
            assert left is not None
            yield left[0], "live"
            left = await anext(live, None)
        elif left is None or right[0] < left[0]:
            yield right[0], "replay"
            right = await anext(replay, None)
        else:
            if left[1] != right[1]:
                yield left[0], ""
            left, right = await anext(live, None), await anext(replay, None)


async def compare_table(
    live: asyncpg.Connection[Any],
    live_schema: str,
    replay: asyncpg.Connection[Any],
    replay_schema: str,
    table: str,
    topic: str,
    limit: int,
) -> TableReport:
    """Checksums of both sides and the first ``limit`` differing rows, with their columns.

    ``live`` must be inside the replay's snapshot transaction; ``replay`` inside any
    transaction.
    """
    shape = await shape_of(live, live_schema, table)
    args = [topic] if "$1" in COMPARED[table] else []
    sums = {"live": hashlib.sha256(), "replay": hashlib.sha256()}
    counts = {"live": 0, "replay": 0}

    async def counted(side: str, rows: AsyncIterator[Row]) -> AsyncIterator[Row]:
        async for row in rows:
            counts[side] += 1
            yield row

    live_rows = counted("live", _stream(live, shape.rows_sql(live_schema), args, sums["live"]))
    replay_rows = counted(
        "replay", _stream(replay, shape.rows_sql(replay_schema), args, sums["replay"])
    )
    differing: list[tuple[tuple[Any, ...], str]] = []
    total = 0
    async for key, side in _merge(live_rows, replay_rows):
        total += 1
        if len(differing) < limit:
            differing.append((key, side))
    return TableReport(
        table=table,
        live_rows=counts["live"],
        replay_rows=counts["replay"],
        live_checksum=sums["live"].hexdigest(),
        replay_checksum=sums["replay"].hexdigest(),
        differing_rows=total,
        differences=await _name_columns(
            shape, differing, (live, live_schema), (replay, replay_schema)
        ),
    )


async def _name_columns(
    shape: Shape,
    differing: list[tuple[tuple[Any, ...], str]],
    live: tuple[asyncpg.Connection[Any], str],
    replay: tuple[asyncpg.Connection[Any], str],
) -> list[RowDifference]:
    """For rows on both sides, which compared columns differ (one query per side)."""
    both = [key for key, side in differing if not side]
    values: list[dict[tuple[Any, ...], tuple[Any, ...]]] = []
    for conn, schema in (live, replay):
        arrays = [[key[n] for key in both] for n in range(len(shape.key))]
        rows = await conn.fetch(shape.values_sql(schema), *arrays) if both else []
        width = len(shape.key)
        values.append({tuple(r)[:width]: tuple(r)[width:] for r in rows})
    out = []
    for key, side in differing:
        named = {k: str(v) for k, v in zip(shape.key, key, strict=True)}
        if side:
            out.append(RowDifference(key=named, only_in="live" if side == "live" else "replay"))
            continue
        before, after = values[0][key], values[1][key]
        columns = [c for c, a, b in zip(shape.columns, before, after, strict=True) if a != b]
        out.append(RowDifference(key=named, columns=columns))
    return out
