"""A rebuild split by partition over several processes.

One Python process folds at most one core's worth of events, and a replay is CPU-bound in
Python (decoding, opening sealed sections, the fold). The ledger's partitions are independent:
each subject's events, its rows and its partition's hash chain stay in one partition, which is
why the live projector may run as several consumers. So each process rebuilds its own share of
the partitions, with the same code as a single process, into the same schema.

The processes are started with ``spawn`` (a fresh interpreter: no copy of the parent's event
loop, pools or sockets) and report over one queue. If one fails, the others are stopped and the
failure is raised in the parent, so the caller drops the half-built schema as it does for one
process.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
import queue as queues
import signal
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.queues import Queue
from typing import Any

from services.config import Settings
from services.replay.reader import ReplayError

#: ``(records read, events applied)`` of one share so far.
ShareProgress = Callable[[int, int], None]
#: Rebuilds one share of the partitions: ``(settings, schema, ends, batch_size, progress)``.
Rebuild = Callable[
    [Settings, str, Mapping[int, int], int, ShareProgress], Coroutine[Any, Any, dict[str, int]]
]
#: How long the parent waits for a message before it looks for processes that died silently.
_POLL_S = 0.2


def shares(ends: Mapping[int, int], processes: int) -> list[dict[int, int]]:
    """The partitions that hold records, dealt out in turn, so no process is started for
    nothing; the empty ones go with the first share, which claims their offset rows."""
    busy = sorted(p for p, end in ends.items() if end > 0)
    dealt = [{p: ends[p] for p in busy[i::processes]} for i in range(processes)]
    parts = [share for share in dealt if share] or [{}]
    parts[0].update({p: 0 for p, end in ends.items() if end <= 0})
    return parts


@dataclass
class _Tally:
    """What the parent knows of each share: its progress and, once done, its counts."""

    read: dict[int, int] = field(default_factory=dict)
    applied: dict[int, int] = field(default_factory=dict)
    done: dict[int, dict[str, int]] = field(default_factory=dict)


async def rebuild_in_processes(
    rebuild: Rebuild,
    settings: Settings,
    schema: str,
    parts: Sequence[Mapping[int, int]],
    batch_size: int,
    progress: ShareProgress,
) -> dict[str, int]:
    """Run ``rebuild`` for each share (see :func:`shares`) in a process of its own; the counts
    of all added up.

    ``rebuild`` must be a module-level function (it is pickled by name for ``spawn``).
    ``progress`` hears the records read and events applied over all processes.
    """
    context = multiprocessing.get_context("spawn")
    messages: Queue[tuple[str, int, Any]] = context.Queue()
    started = [
        context.Process(
            target=_run_share,
            args=(rebuild, settings, schema, share, batch_size, index, messages),
            name=f"consent-ledger replay {index + 1}/{len(parts)}",
            daemon=True,
        )
        for index, share in enumerate(parts)
    ]
    tally = _Tally()
    try:
        for process in started:
            process.start()
        while len(tally.done) < len(started):
            message = await asyncio.to_thread(_next, messages)
            if message is None and (silent := _ended_silently(started, tally)):
                message = await asyncio.to_thread(_next, messages)  # its last words, in flight?
                if message is None:
                    raise ReplayError(silent)
            if message is not None:
                _take(message, tally)
                progress(sum(tally.read.values()), sum(tally.applied.values()))
    finally:
        for process in started:
            if process.is_alive():
                process.terminate()
        for process in started:
            if process.pid is not None:  # started
                await asyncio.to_thread(process.join)
        messages.close()
    totals: dict[str, int] = {}
    for counts in tally.done.values():
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    return totals


def _next(messages: Queue[tuple[str, int, Any]]) -> tuple[str, int, Any] | None:
    try:
        return messages.get(timeout=_POLL_S)
    except queues.Empty:
        return None


def _take(message: tuple[str, int, Any], tally: _Tally) -> None:
    kind, index, body = message
    if kind == "progress":
        tally.read[index], tally.applied[index] = body
    elif kind == "done":
        tally.done[index], (tally.read[index], tally.applied[index]) = body
    else:
        raise pickle.loads(body)


def _ended_silently(processes: Sequence[BaseProcess], tally: _Tally) -> str | None:
    """What to say of a process that ended without reporting (killed for memory, say)."""
    for index, process in enumerate(processes):
        if index not in tally.done and process.exitcode is not None:
            return (
                f"replay process {index + 1} of {len(processes)} {_how(process.exitcode)} before "
                "it finished its partitions" + _hint(process.exitcode)
            )
    return None


def _how(exitcode: int) -> str:
    if exitcode >= 0:
        return f"exited with {exitcode}"
    try:
        return f"was killed by {signal.Signals(-exitcode).name}"
    except ValueError:  # a signal Python has no name for
        return f"was killed by signal {-exitcode}"


def _hint(exitcode: int) -> str:
    if exitcode != -signal.SIGKILL:
        return ""
    return " (out of memory? fewer --processes or a smaller --batch-size need less)"


def _run_share(
    rebuild: Rebuild,
    settings: Settings,
    schema: str,
    ends: Mapping[int, int],
    batch_size: int,
    index: int,
    messages: Queue[tuple[str, int, Any]],
) -> None:
    """The child's body: rebuild one share, reporting progress at most twice a second and the
    last progress with the counts."""
    latest = (0, 0)
    sent = 0.0

    def report(read: int, applied: int) -> None:
        nonlocal latest, sent
        latest = (read, applied)
        if time.monotonic() - sent >= 0.5:
            sent = time.monotonic()
            messages.put(("progress", index, latest))

    try:
        counts = asyncio.run(rebuild(settings, schema, ends, batch_size, report))
    except BaseException as exc:  # every failure must reach the parent
        messages.put(("failed", index, _picklable(exc)))
        return
    messages.put(("done", index, (counts, latest)))


def _picklable(exc: BaseException) -> bytes:
    """The exception itself when it survives pickling, else a ReplayError that names it."""
    try:
        body = pickle.dumps(exc)
        pickle.loads(body)
    except Exception:  # each exception type may fail in its own way
        return pickle.dumps(ReplayError(f"a replay process failed: {exc!r}"))
    return body
