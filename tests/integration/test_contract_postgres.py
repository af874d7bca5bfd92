"""The write path's contract (tests/contract/write_path.py) on the PostgreSQL adapters."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from events.sealing import MasterKey
from services.intake.idempotency import IdempotencyStore
from services.intake.postgres import PostgresAdmission
from services.privacy.keystore import KeyStore
from tests.contract.write_path import Backend, WritePathContract


@pytest.mark.integration
class TestPostgres(WritePathContract):
    @pytest.fixture
    def backend(self, pool: asyncpg.Pool[Any]) -> Backend:
        claims = IdempotencyStore(pool)
        master = MasterKey.from_text(MasterKey.generate_text())
        return Backend(PostgresAdmission(pool, claims), claims, KeyStore(pool, master))
