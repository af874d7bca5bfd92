"""The stack's own PostgreSQL runs with the settings the ledger's write load needs."""

from __future__ import annotations

import asyncpg
import pytest

from services.config import Settings
from tools.stack.postgres import SERVER_SETTINGS, settings_to_restart

pytestmark = pytest.mark.integration


async def test_the_stack_server_runs_with_its_settings(settings: Settings) -> None:
    conn = await asyncpg.connect(settings.database_url)
    try:
        shown = {name: await conn.fetchval(f"SHOW {name}") for name in SERVER_SETTINGS}
    finally:
        await conn.close()
    assert shown == SERVER_SETTINGS
    assert await settings_to_restart(settings.database_url) == []
