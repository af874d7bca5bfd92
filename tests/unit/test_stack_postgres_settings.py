"""The stack's PostgreSQL settings: docker-compose.yml gives its server the same, and a server
started without them is named with what it has."""

from __future__ import annotations

import re
from pathlib import Path

from tools.stack.postgres import SERVER_SETTINGS, missing_settings

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_postgres_gets_the_stack_settings() -> None:
    service = COMPOSE.read_text().split("\n  postgres:\n", 1)[1].split("\n\n", 1)[0]
    given = dict(re.findall(r'"-c", "([a-z_]+)=([^"]+)"', service))
    assert given == SERVER_SETTINGS


def test_a_server_started_without_them_is_named_with_what_it_has() -> None:
    shown = {**SERVER_SETTINGS, "max_wal_size": "1GB", "wal_compression": "off"}
    assert missing_settings(shown) == [
        f"max_wal_size={SERVER_SETTINGS['max_wal_size']} (now: 1GB)",
        f"wal_compression={SERVER_SETTINGS['wal_compression']} (now: off)",
    ]
    assert missing_settings(SERVER_SETTINGS) == []
