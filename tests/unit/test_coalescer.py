"""The coalescer: concurrent callers share one set-based lookup (no broker or database needed)."""

from __future__ import annotations

import asyncio

import pytest

from services.coalescer import Coalescer


class Lookup:
    """A set-based lookup that records each call and can be held open or made to fail."""

    def __init__(self) -> None:
        self.calls: list[dict[str, str]] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.failures: list[Exception] = []

    async def __call__(self, wanted: dict[str, str]) -> dict[str, str]:
        self.calls.append(dict(wanted))
        await self.gate.wait()
        if self.failures:
            raise self.failures.pop(0)
        return {k: f"{k}={v}" for k, v in wanted.items() if not k.startswith("missing")}


async def test_a_caller_alone_is_looked_up_at_once() -> None:
    lookup = Lookup()
    coalescer = Coalescer(lookup)
    assert await coalescer.get({"a": "1", "missing-b": "2"}) == {"a": "a=1"}
    assert lookup.calls == [{"a": "1", "missing-b": "2"}]


async def test_callers_that_come_while_a_call_runs_share_the_next_call() -> None:
    lookup = Lookup()
    coalescer = Coalescer(lookup)
    lookup.gate.clear()
    first = asyncio.create_task(coalescer.get({"a": "1"}))
    await asyncio.sleep(0)  # the first call is running now, held at the gate
    rest = [asyncio.create_task(coalescer.get({k: v})) for k, v in [("b", "2"), ("c", "3")]]
    same_key = asyncio.create_task(coalescer.get({"b": "other"}))
    await asyncio.sleep(0)
    lookup.gate.set()
    answers = await asyncio.gather(first, *rest, same_key)
    assert answers == [{"a": "a=1"}, {"b": "b=2"}, {"c": "c=3"}, {"b": "b=2"}]
    # One call for the first caller, one for all who came meanwhile; the first argument given
    # for a key wins.
    assert lookup.calls == [{"a": "1"}, {"b": "2", "c": "3"}]


async def test_a_failed_call_fails_its_callers_only() -> None:
    lookup = Lookup()
    coalescer = Coalescer(lookup)
    lookup.failures.append(ConnectionError("database gone"))
    with pytest.raises(ConnectionError, match="database gone"):
        await coalescer.get({"a": "1"})
    assert await coalescer.get({"a": "1"}) == {"a": "a=1"}
    assert len(lookup.calls) == 2


async def test_a_cancelled_caller_does_not_disturb_the_others() -> None:
    lookup = Lookup()
    coalescer = Coalescer(lookup)
    lookup.gate.clear()
    running = asyncio.create_task(coalescer.get({"a": "1"}))
    await asyncio.sleep(0)
    gone = asyncio.create_task(coalescer.get({"b": "2"}))
    kept = asyncio.create_task(coalescer.get({"c": "3"}))
    await asyncio.sleep(0)
    gone.cancel()
    lookup.gate.set()
    assert await running == {"a": "a=1"}
    assert await kept == {"c": "c=3"}
    assert gone.cancelled()


async def test_nothing_wanted_calls_nothing() -> None:
    lookup = Lookup()
    assert await Coalescer(lookup).get({}) == {}
    assert lookup.calls == []
