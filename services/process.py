"""How the ledger's long-running processes run: their event loop and their heap."""

from __future__ import annotations

import gc
from collections.abc import Coroutine
from typing import Any, TypeVar

import uvloop

T = TypeVar("T")

#: Collect the youngest generation every 100,000 allocations (CPython's default: 700), the
#: middle one every 100 of those, the whole heap rarely. A consumed batch keeps thousands of
#: objects alive for a moment: with the defaults they were promoted and the whole heap walked
#: again and again, a third of the projector's CPU (docs/performance.md). Cycles are still
#: collected; reference counting frees everything else at once, as before.
THRESHOLDS = (100_000, 100, 100)


def settle_heap() -> None:
    """Take what is alive once a process has loaded its code (modules, pydantic's validators,
    the app) out of the cyclic collector's reach, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)


def run_service(main: Coroutine[Any, Any, T]) -> T:
    """Run a long-running command's main coroutine to its end: after :func:`settle_heap`, on
    uvloop (libuv's event loop; the HTTP services spent a large share of their CPU in
    asyncio's own loop and transports, docs/performance.md)."""
    settle_heap()
    return uvloop.run(main)
