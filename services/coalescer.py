"""Concurrent requests share one set-based lookup instead of a round trip each.

While one call to the lookup runs, the keys that other requests ask for wait, and all of them
go into the next call together: as the appender groups concurrent requests into one Kafka
transaction, this groups their PostgreSQL lookups (tokens, data keys) into one
statement. A request that comes alone is looked up at once, as before; under load a request
costs a share of a round trip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
A = TypeVar("A")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class _Waiting(Generic[K, A, V]):
    wanted: Mapping[K, A]
    answer: asyncio.Future[dict[K, V]]


class Coalescer(Generic[K, A, V]):
    """Calls ``lookup`` with the union of what concurrent callers want.

    ``lookup`` takes keys (each with an argument, such as a proposed value; where two callers
    give one key different arguments, the first wins) and returns what it found by key. Each
    caller gets the part of the answer for its own keys; if the call fails, every caller in it
    gets the error, and the next group is tried afresh.
    """

    def __init__(self, lookup: Callable[[dict[K, A]], Awaitable[Mapping[K, V]]]) -> None:
        self._lookup = lookup
        self._waiting: list[_Waiting[K, A, V]] = []
        self._runner: asyncio.Task[None] | None = None

    async def get(self, wanted: Mapping[K, A]) -> dict[K, V]:
        if not wanted:
            return {}
        answer: asyncio.Future[dict[K, V]] = asyncio.get_running_loop().create_future()
        self._waiting.append(_Waiting(wanted, answer))
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run(), name="coalescer")
        return await answer

    async def _run(self) -> None:
        while self._waiting:
            group, self._waiting = self._waiting, []
            union: dict[K, A] = {}
            for waiting in group:
                for key, argument in waiting.wanted.items():
                    union.setdefault(key, argument)
            try:
                found = await self._lookup(union)
            except Exception as exc:
                for waiting in group:
                    if not waiting.answer.done():
                        waiting.answer.set_exception(exc)
                continue
            for waiting in group:
                if not waiting.answer.done():
                    waiting.answer.set_result({k: found[k] for k in waiting.wanted if k in found})
