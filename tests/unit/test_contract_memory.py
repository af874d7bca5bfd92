"""The write path's contract (tests/contract/write_path.py) on the in-memory adapters."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events.ids import uuid7
from services.intake.memory import MemoryAdmission, MemoryIdempotency, MemoryKeyStore
from services.intake.ports import CLAIM_LEASE_S, Claim
from tests.contract.write_path import DIGEST, Backend, WritePathContract


class TestMemory(WritePathContract):
    @pytest.fixture
    def backend(self) -> Backend:
        claims = MemoryIdempotency()
        return Backend(MemoryAdmission(claims), claims, MemoryKeyStore())


async def test_a_claim_whose_lease_ran_out_is_taken_over_with_the_same_ids() -> None:
    """What PostgreSQL's clock decides there; here a clock of our own (60 s are not waited)."""
    now = [0.0]
    claims = MemoryIdempotency(clock=lambda: now[0])
    work = MemoryAdmission(claims)
    ids, at = [uuid7()], datetime.now(UTC)
    async with work.begin() as batch:
        await batch.claim("k", DIGEST, ids, at)
    now[0] += CLAIM_LEASE_S
    async with work.begin() as batch:
        assert (await batch.claim("k", DIGEST, [uuid7()], at)).outcome == "in_progress"
    now[0] += 1
    async with work.begin() as batch:
        assert await batch.claim("k", DIGEST, [uuid7()], at) == Claim("new", ids, at)
