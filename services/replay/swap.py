"""``replay --swap``: put the rebuilt tables in place of the live ones, in one transaction.

Only safe while the live projection still stands where the replay stopped reading: the offset
rows are locked first (the order the projector itself locks in, so the two cannot deadlock) and
compared with the replay's ends; if the projector has moved on, the swap is refused.
"""

from __future__ import annotations

import asyncpg

from projections.store import PROJECTION
from services.replay.compare import quote
from services.replay.report import ReplayReport

#: The tables that move. ``projector_offsets`` stays: it already says where both stand.
SWAPPED = ("subscribers", "rights_requests", "recipient_notifications", "ledger_events")


class SwapRefusedError(Exception):
    """The live projection moved past the replay's end; the message says what to do."""


async def swap(database_url: str, report: ReplayReport) -> ReplayReport:
    """Exchange the live tables for the replay's; the old ones go to ``<schema>_previous``."""
    live, rebuilt = report.live_schema, report.replay_schema
    previous = f"{rebuilt}_previous"
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            rows = await conn.fetch(
                f"SELECT partition, next_offset FROM {quote(live)}.projector_offsets"
                " WHERE projection = $1 AND topic = $2 ORDER BY partition FOR UPDATE",
                PROJECTION,
                report.topic,
            )
            moved = {
                r["partition"]: (r["next_offset"], report.ends.get(r["partition"], 0))
                for r in rows
                if r["next_offset"] != report.ends.get(r["partition"], 0)
            }
            if moved:
                where = ", ".join(
                    f"partition {p}: live at {now}, replay ended at {end}"
                    for p, (now, end) in sorted(moved.items())
                )
                raise SwapRefusedError(
                    f"not swapped: the projector has moved past the replay's end ({where}). "
                    "Stop the projector, run `consent-ledger replay --swap` again, then start it."
                )
            await conn.execute(f"CREATE SCHEMA {quote(previous)}")
            for table in SWAPPED:
                await conn.execute(
                    f"ALTER TABLE {quote(live)}.{quote(table)} SET SCHEMA {quote(previous)}"
                )
                await conn.execute(
                    f"ALTER TABLE {quote(rebuilt)}.{quote(table)} SET SCHEMA {quote(live)}"
                )
            await conn.execute(f"DROP SCHEMA {quote(rebuilt)} CASCADE")
    finally:
        await conn.close()
    return report.model_copy(update={"swapped": True, "kept": False, "previous_schema": previous})
