"""Numbered SQL migrations in ``projections/sql``, applied once each, in order, under a lock."""

from __future__ import annotations

from importlib import resources

import asyncpg

_LOCK_ID = 7_263_001  # an advisory lock so that concurrent starters do not race


def migration_files() -> list[tuple[str, str]]:
    """``(name, sql)`` of every migration shipped with the package, by name."""
    folder = resources.files("projections") / "sql"
    return sorted(
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    )


async def apply(database_url: str, *, schema: str | None = None) -> list[str]:
    """Apply the migrations not yet applied; returns their names.

    ``schema`` applies them inside that (existing) schema alone, e.g. a replay's fresh tables.
    """
    settings = {"search_path": schema} if schema else None
    conn = await asyncpg.connect(database_url, server_settings=settings)
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}
        applied = []
        for name, sql in migration_files():
            if name in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied.append(name)
        return applied
    finally:
        await conn.close()
