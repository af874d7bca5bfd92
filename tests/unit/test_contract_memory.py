"""The write path's contract (tests/contract/write_path.py) on the in-memory adapters."""

from __future__ import annotations

import pytest

from services.intake.memory import MemoryAdmission, MemoryIdempotency, MemoryKeyStore
from tests.contract.write_path import Backend, WritePathContract


class TestMemory(WritePathContract):
    @pytest.fixture
    def backend(self) -> Backend:
        claims = MemoryIdempotency()
        return Backend(MemoryAdmission(claims), claims, MemoryKeyStore())
