"""The contract every backend of the write path's ports must pass (services/intake/ports.py).

One set of test bodies, in the style of the ``eventsourcing`` library's recorder test cases: a
backend's test class inherits :class:`WritePathContract` and gives the ``backend`` fixture.
``tests/unit/test_contract_memory.py`` runs it on the in-memory adapters (no stack),
``tests/integration/test_contract_postgres.py`` on PostgreSQL.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

import pytest

from events.catalog import SUBMISSION_ADAPTER, AnySubmission
from events.ids import uuid7
from services.intake.ports import AdmissionUnitOfWork, Claim, DataKeys, IdempotencyKeys
from services.privacy.suppression import AddressBook
from tests.samples import given_json, valid_json

A = b"a" * 32  # an address key, as IdentityIndex.key gives them
B = b"b" * 32
DIGEST = b"d" * 32


@dataclass(frozen=True, slots=True)
class Backend:
    """One backend's adapters for the ports."""

    work: AdmissionUnitOfWork
    claims: IdempotencyKeys
    keys: DataKeys


class RefusedError(Exception):
    """Raised inside a transaction to roll it back."""


def given(subject: str) -> AnySubmission:
    return SUBMISSION_ADAPTER.validate_python(given_json(subject))


def objection(subject: str) -> AnySubmission:
    return SUBMISSION_ADAPTER.validate_python(valid_json("objection.received", subject))


async def read(backend: Backend, *keys: bytes) -> AddressBook:
    """What a later batch reads about these addresses."""
    submissions = [given(f"reader-{i}") for i in range(len(keys))]
    async with backend.work.begin() as batch:
        return await batch.book(submissions, dict(enumerate(keys)))


async def attach(backend: Backend, key: bytes, subject: str) -> None:
    async with backend.work.begin() as batch:
        book = await batch.book([given(subject)], {0: key})
        book.attach(key, subject)
        await batch.record(book, [uuid7()])


async def suppress(backend: Backend, subject: str, key: bytes) -> UUID:
    """Commit an objection of the subject holding ``key``; its event id."""
    cause = uuid7()
    async with backend.work.begin() as batch:
        book = await batch.book([objection(subject)], {0: key})
        book.suppress(subject, "objected", 0)
        await batch.record(book, [cause])
    return cause


async def refused_batch(backend: Backend) -> None:
    """A batch that claims a key, attaches B and suppresses A, then is refused."""
    async with backend.work.begin() as batch:
        book = await batch.book([objection("crm-a"), given("crm-b")], {1: B})
        book.attach(B, "crm-b")
        book.suppress("crm-a", "objected", 0)
        await batch.record(book, [uuid7(), uuid7()])
        await batch.claim("k-1", DIGEST, [uuid7()], datetime.now(UTC))
        raise RefusedError


class WritePathContract:
    """What admission, intake and the key store rely on, whatever keeps the state."""

    @pytest.fixture
    def backend(self) -> Backend:
        raise NotImplementedError("a backend's test class gives its adapters")

    async def test_owners_and_holders_are_read_back_after_commit(self, backend: Backend) -> None:
        await attach(backend, A, "crm-a")
        await attach(backend, A, "crm-b")
        book = await read(backend, A)
        assert book.owners == {A: "crm-a"}  # the first subject stays the owner
        assert book.holders == {A: {"crm-a", "crm-b"}}
        assert book.suppressed == {}

    async def test_a_rolled_back_batch_leaves_nothing(self, backend: Backend) -> None:
        await attach(backend, A, "crm-a")
        with pytest.raises(RefusedError):
            await refused_batch(backend)
        book = await read(backend, A, B)
        assert (book.owners, book.holders, book.suppressed) == ({A: "crm-a"}, {A: {"crm-a"}}, {})
        async with backend.work.begin() as batch:
            assert (await batch.claim("k-1", DIGEST, [], datetime.now(UTC))).outcome == "new"

    async def test_an_objection_suppresses_every_address_of_its_subject(
        self, backend: Backend
    ) -> None:
        await attach(backend, A, "crm-a")
        await attach(backend, B, "crm-a")
        await attach(backend, B, "crm-b")
        async with backend.work.begin() as batch:  # named by subject id alone: no address
            book = await batch.book([objection("crm-a")], {})
        assert book.holders == {A: {"crm-a"}, B: {"crm-a", "crm-b"}}
        await suppress(backend, "crm-a", A)
        assert (await read(backend, A, B)).suppressed == {A: "objected", B: "objected"}

    async def test_unmark_takes_back_only_the_marks_of_the_given_events(
        self, backend: Backend
    ) -> None:
        await attach(backend, A, "crm-a")
        await attach(backend, B, "crm-b")
        first = await suppress(backend, "crm-a", A)
        await suppress(backend, "crm-b", B)
        await backend.work.unmark([first])
        assert (await read(backend, A, B)).suppressed == {B: "objected"}

    async def test_batches_on_one_address_are_decided_one_after_the_other(
        self, backend: Backend
    ) -> None:
        await attach(backend, A, "crm-a")
        steps: list[str] = []
        first_read = asyncio.Event()

        async def first() -> None:
            async with backend.work.begin() as batch:
                book = await batch.book([objection("crm-a")], {0: A})
                first_read.set()
                await asyncio.sleep(0.05)  # the second batch is waiting meanwhile
                book.suppress("crm-a", "objected", 0)
                await batch.record(book, [uuid7()])
                steps.append("first commits")

        async def second() -> AddressBook:
            await first_read.wait()
            async with backend.work.begin() as batch:
                book = await batch.book([given("crm-b")], {0: A})
                steps.append("second reads")
                return book

        _, seen = await asyncio.gather(first(), second())
        assert steps == ["first commits", "second reads"]
        assert seen.suppressed == {A: "objected"}

    async def test_an_idempotency_claim_is_new_then_in_progress_then_replayed(
        self, backend: Backend
    ) -> None:
        ids, at = [uuid7(), uuid7()], datetime.now(UTC)
        async with backend.work.begin() as batch:
            assert await batch.claim("k", DIGEST, ids, at) == Claim("new", ids, at)
        assert await backend.claims.answered("k", DIGEST) is None
        async with backend.work.begin() as batch:
            assert (await batch.claim("k", DIGEST, [uuid7()], at)).outcome == "in_progress"
        await backend.claims.complete("k", {"events": [{"offset": 7}]})
        assert await backend.claims.answered("k", DIGEST) == {"events": [{"offset": 7}]}
        assert await backend.claims.answered("k", b"other") is None
        async with backend.work.begin() as batch:
            replay = await batch.claim("k", DIGEST, [uuid7()], at)
        assert (replay.outcome, replay.response) == ("replay", {"events": [{"offset": 7}]})

    async def test_a_key_reused_for_another_body_is_a_mismatch(self, backend: Backend) -> None:
        async with backend.work.begin() as batch:
            await batch.claim("k", DIGEST, [uuid7()], datetime.now(UTC))
        async with backend.work.begin() as batch:
            assert (await batch.claim("k", b"other", [], datetime.now(UTC))).outcome == "mismatch"

    async def test_a_released_key_is_taken_over_with_the_same_ids(self, backend: Backend) -> None:
        ids, at = [uuid7()], datetime.now(UTC)
        async with backend.work.begin() as batch:
            await batch.claim("k", DIGEST, ids, at)
        await backend.claims.release("k")
        async with backend.work.begin() as batch:
            taken = await batch.claim("k", DIGEST, [uuid7()], datetime.now(UTC))
        assert taken == Claim("new", ids, at)

    async def test_a_subjects_current_key_stays_until_it_is_shredded(
        self, backend: Backend
    ) -> None:
        first = await backend.keys.current(["crm-a", "crm-b"])
        assert [(k.subject_id, k.generation) for k in first.values()] == [
            ("crm-a", 1),
            ("crm-b", 1),
        ]
        assert await backend.keys.current(["crm-a"]) == {"crm-a": first["crm-a"]}
        await backend.keys.shred([("crm-a", 1, uuid7())])
        after = await backend.keys.current(["crm-a", "crm-b"])
        assert after["crm-a"].generation == 2
        assert after["crm-a"].secret != first["crm-a"].secret
        assert after["crm-b"] == first["crm-b"]
