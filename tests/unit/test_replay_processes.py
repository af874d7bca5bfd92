"""A replay split over processes: how partitions are dealt, and that counts, progress and
failures of the worker processes all reach the parent (real ``spawn`` processes; the Kafka and
PostgreSQL side is in tests/integration/test_replay.py)."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from collections.abc import Mapping

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.config import Settings
from services.replay.processes import Rebuild, ShareProgress, rebuild_in_processes, shares
from services.replay.reader import ReplayError

Heard = list[tuple[int, int]]


@given(
    st.dictionaries(st.integers(0, 63), st.integers(0, 10_000), min_size=1),
    st.integers(1, 8),
)
def test_every_partition_goes_to_exactly_one_share_and_none_is_empty(
    ends: dict[int, int], processes: int
) -> None:
    dealt = shares(ends, processes)
    assert 1 <= len(dealt) <= processes
    merged = {p: end for share in dealt for p, end in share.items()}
    assert merged == ends
    assert sum(len(share) for share in dealt) == len(ends)
    assert all(any(end > 0 for end in share.values()) for share in dealt[1:])
    busy = sum(1 for end in ends.values() if end > 0)
    assert len(dealt) == max(1, min(busy, processes))


def test_partitions_are_dealt_in_turn_and_empty_ones_go_first() -> None:
    ends = {0: 10, 1: 10, 2: 0, 3: 10, 4: 10, 5: 10}
    assert shares(ends, 2) == [{0: 10, 3: 10, 5: 10, 2: 0}, {1: 10, 4: 10}]


async def counting(
    settings: Settings, schema: str, ends: Mapping[int, int], batch: int, progress: ShareProgress
) -> dict[str, int]:
    progress(sum(ends.values()), len(ends))
    return {"records": sum(ends.values()), "in_a_child": int(os.getppid() != os.getpid())}


async def failing(
    settings: Settings, schema: str, ends: Mapping[int, int], batch: int, progress: ShareProgress
) -> dict[str, int]:
    if 1 in ends:
        raise ReplayError(f"partition 1 cannot be read ({schema})")
    await asyncio.sleep(600)  # the other share would run long: it must be stopped
    return {}


async def dying(
    settings: Settings, schema: str, ends: Mapping[int, int], batch: int, progress: ShareProgress
) -> dict[str, int]:
    if 1 in ends:
        os._exit(3)
    await asyncio.sleep(600)
    return {}


async def unpicklable(
    settings: Settings, schema: str, ends: Mapping[int, int], batch: int, progress: ShareProgress
) -> dict[str, int]:
    class LocalError(Exception):
        """Defined in a function, so pickle cannot find it by name."""

    raise LocalError("bad key")


def run(rebuild: Rebuild, ends: dict[int, int], processes: int) -> tuple[dict[str, int], Heard]:
    heard: Heard = []
    totals = asyncio.run(
        rebuild_in_processes(
            rebuild,
            Settings(),
            "replay_x",
            shares(ends, processes),
            100,
            lambda read, applied: heard.append((read, applied)),
        )
    )
    return totals, heard


def test_the_counts_and_progress_of_every_process_are_added_up() -> None:
    totals, heard = run(counting, {0: 5, 1: 7, 2: 11, 3: 0}, 3)
    assert totals == {"records": 23, "in_a_child": 3}
    assert heard[-1] == (23, 4)  # every share's last progress, though sent within 0.5 s
    assert multiprocessing.active_children() == []


def test_a_failing_process_fails_the_replay_with_its_own_error_and_stops_the_others() -> None:
    with pytest.raises(ReplayError, match=r"partition 1 cannot be read \(replay_x\)"):
        run(failing, {0: 5, 1: 7}, 2)
    assert multiprocessing.active_children() == []


async def killed(
    settings: Settings, schema: str, ends: Mapping[int, int], batch: int, progress: ShareProgress
) -> dict[str, int]:
    if 0 in ends:
        os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer does
    await asyncio.sleep(600)
    return {}


def test_a_process_that_dies_without_a_word_is_named() -> None:
    with pytest.raises(ReplayError, match=r"^replay process 2 of 2 exited with 3 before it fin"):
        run(dying, {0: 5, 1: 7}, 2)
    assert multiprocessing.active_children() == []
    with pytest.raises(ReplayError, match=r"process 1 of 2 was killed by SIGKILL .*\(out of mem"):
        run(killed, {0: 5, 1: 7}, 2)
    assert multiprocessing.active_children() == []


def test_an_error_that_cannot_cross_processes_is_still_reported() -> None:
    with pytest.raises(ReplayError, match=r"a replay process failed: .*LocalError\('bad key'\)"):
        run(unpicklable, {0: 5, 1: 7}, 2)
