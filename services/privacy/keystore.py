"""Per-subject data keys in PostgreSQL, wrapped by the master key.

Set-based: one statement finds the keys of every subject in a request or batch; new subjects get
their first key in one more. Erasure destroys keys (``wrapped`` becomes NULL) and a subject that
reappears afterwards gets a new generation, so nothing written after the erasure is lost with it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from events.sealing import DataKey, MasterKey
from projections.keys import SHRED_KEYS
from services.coalescer import Coalescer

_LATEST = """
SELECT DISTINCT ON (subject_id) subject_id, generation, wrapped FROM subject_keys
WHERE subject_id = ANY($1::text[]) ORDER BY subject_id, generation DESC
"""
_CREATE = """
INSERT INTO subject_keys (subject_id, generation, wrapped, master_key_id)
SELECT * FROM unnest($1::text[], $2::int[], $3::bytea[], $4::text[])
ON CONFLICT DO NOTHING
"""
_EXACT = """
SELECT k.subject_id, k.generation, k.wrapped FROM subject_keys AS k
JOIN unnest($1::text[], $2::int[]) AS w(subject_id, generation) USING (subject_id, generation)
WHERE k.wrapped IS NOT NULL
"""

Pool: TypeAlias = "asyncpg.Pool[Any]"
KeyRef = tuple[str, int]


class KeyStore:
    """Creates, finds and destroys data keys; keys leave it only unwrapped, in memory."""

    def __init__(self, pool: Pool, master: MasterKey) -> None:
        self._pool = pool
        self._master = master
        self._current: Coalescer[str, None, DataKey] = Coalescer(self._current_of)

    async def current(self, subject_ids: Iterable[str]) -> dict[str, DataKey]:
        """The key to seal new events with, per subject: the latest live generation, or a new
        one (the first, or the next after an erasure destroyed the latest). Concurrent
        requests share the statements."""
        return await self._current.get(dict.fromkeys(subject_ids))

    async def _current_of(self, subject_ids: dict[str, None]) -> dict[str, DataKey]:
        wanted = sorted(subject_ids)
        latest = {r["subject_id"]: r for r in await self._pool.fetch(_LATEST, wanted)}
        keys = {
            s: self._master.unwrap(s, r["generation"], r["wrapped"])
            for s, r in latest.items()
            if r["wrapped"] is not None
        }
        missing = [s for s in wanted if s not in keys]
        if missing:
            fresh = [DataKey.generate(s, latest[s]["generation"] + 1 if s in latest else 1)
                     for s in missing]  # fmt: skip
            await self._pool.execute(
                _CREATE,
                [k.subject_id for k in fresh],
                [k.generation for k in fresh],
                [self._master.wrap(k) for k in fresh],
                [self._master.key_id] * len(fresh),
            )
            # A concurrent request may have created the same generation first: use its key.
            keys |= await self.find((k.subject_id, k.generation) for k in fresh)
        return keys

    async def find(self, refs: Iterable[KeyRef]) -> dict[str, DataKey]:
        """Keys by subject for the given (subject, generation) pairs; destroyed ones are absent."""
        found = await self.find_exact(refs)
        return {subject: key for (subject, _), key in found.items()}

    async def find_exact(self, refs: Iterable[KeyRef]) -> dict[KeyRef, DataKey]:
        """Live keys by (subject, generation); a destroyed key is simply not there."""
        pairs = sorted(set(refs))
        if not pairs:
            return {}
        rows = await self._pool.fetch(_EXACT, [s for s, _ in pairs], [g for _, g in pairs])
        return {
            (r["subject_id"], r["generation"]): self._master.unwrap(
                r["subject_id"], r["generation"], r["wrapped"]
            )
            for r in rows
        }

    async def all_of(self, subject_id: str) -> dict[KeyRef, DataKey]:
        """Every live key of one subject (to open their history)."""
        rows = await self._pool.fetch(
            "SELECT generation FROM subject_keys WHERE subject_id = $1 AND wrapped IS NOT NULL",
            subject_id,
        )
        return await self.find_exact((subject_id, r["generation"]) for r in rows)

    async def shred(self, erasures: Iterable[tuple[str, int, UUID]]) -> None:
        """Destroy each subject's keys up to a generation: ``(subject, through, erasure id)``."""
        batch = list(erasures)
        if batch:
            await self._pool.execute(
                SHRED_KEYS, [b[0] for b in batch], [b[1] for b in batch], [b[2] for b in batch]
            )


async def rotate_master(pool: Pool, old: MasterKey, new: MasterKey, chunk: int = 5000) -> int:
    """Rewrap every live data key from ``old`` to ``new`` in one transaction; the log is not
    touched. Returns how many keys were rewrapped. Keys wrapped by neither are refused."""
    rewrapped = 0
    async with pool.acquire() as conn, conn.transaction():
        strangers = await conn.fetchval(
            "SELECT count(*) FROM subject_keys WHERE wrapped IS NOT NULL"
            " AND master_key_id <> ALL($1::text[])",
            [old.key_id, new.key_id],
        )
        if strangers:
            raise ValueError(
                f"{strangers} data keys are wrapped by a master key that is neither the old "
                f"({old.key_id}) nor the new ({new.key_id}) one; nothing was changed"
            )
        while True:
            rows = await conn.fetch(
                "SELECT subject_id, generation, wrapped FROM subject_keys"
                " WHERE wrapped IS NOT NULL AND master_key_id = $1 LIMIT $2 FOR UPDATE",
                old.key_id,
                chunk,
            )
            if not rows:
                return rewrapped
            keys = [old.unwrap(r["subject_id"], r["generation"], r["wrapped"]) for r in rows]
            await conn.execute(
                "UPDATE subject_keys AS k SET wrapped = n.wrapped, master_key_id = $4"
                " FROM unnest($1::text[], $2::int[], $3::bytea[]) AS n(subject_id, generation,"
                " wrapped) WHERE k.subject_id = n.subject_id AND k.generation = n.generation",
                [k.subject_id for k in keys],
                [k.generation for k in keys],
                [new.wrap(k) for k in keys],
                new.key_id,
            )
            rewrapped += len(keys)
