"""docker-compose.yml starts PostgreSQL with the settings the stack's own server gets."""

from __future__ import annotations

import re
from pathlib import Path

from services.stack.postgres import SERVER_SETTINGS

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_compose_postgres_gets_the_stack_settings() -> None:
    service = COMPOSE.read_text().split("\n  postgres:\n", 1)[1].split("\n\n", 1)[0]
    given = dict(re.findall(r'"-c", "([a-z_]+)=([^"]+)"', service))
    assert given == SERVER_SETTINGS
