"""The services under test, run as child processes (as ``python -m tools run`` does) so that
their peak resident memory can be read from ``/proc``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from services.config import Settings
from tools import runner, stack

STOP_TIMEOUT_S = 15.0


@dataclass
class Child:
    name: str
    url: str
    process: subprocess.Popen[bytes]
    peak_rss_mb: float | None = None


def vm_hwm_mb(status_text: str) -> float | None:
    """``VmHWM`` (peak resident set size) of a ``/proc/<pid>/status`` text, in MiB."""
    for line in status_text.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def read_peak_rss_mb(pid: int) -> float | None:
    try:
        return vm_hwm_mb(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return None


def service_of(name: str, settings: Settings) -> runner.Service:
    """The HTTP service called ``name`` as ``python -m tools run`` starts it."""
    return next(s for s in runner.services_of(settings) if s.name == name)


async def start(name: str, settings: Settings) -> Child:
    """Spawn ``consent-ledger <name>`` as ``python -m tools run`` does, register it with the
    stack so ``down`` would stop it, and wait until its ``/readyz`` answers 200."""
    service = service_of(name, settings)
    child = Child(name, service.url, runner.spawn(name, settings))
    stack.register_service(settings, name, child.url, child.process.pid)
    try:
        await asyncio.to_thread(runner.wait_ready, service, child.process)
    except BaseException:
        await stop(child, settings)
        raise
    return child


def start_worker(name: str, settings: Settings) -> Child:
    """Spawn ``consent-ledger <name>`` for a service with no HTTP side (the feed publisher)."""
    child = Child(name, "", runner.spawn(name, settings))
    stack.register_service(settings, name, "", child.process.pid)
    return child


#: How often a command's peak RSS is read while it runs.
RSS_POLL_S = 0.2


@dataclass(frozen=True)
class Finished:
    """A command run to its end: what it printed, and its peak resident memory."""

    stdout: str
    peak_rss_mb: float


def run_command(
    command: str,
    settings: Settings,
    *args: str,
    running: Callable[[int | None], None] | None = None,
) -> Finished:
    """Run ``consent-ledger <command> <args>`` to its end in a process of its own, as a user
    runs it (the process settings of ``services/process.py`` included). Its progress on stderr
    is shown as it comes.

    The peak RSS is read as :func:`run_measured` reads it. The kernel's own account
    (``wait4``'s ``ru_maxrss``) is no use here: it counts the parent's memory that the child had
    before ``exec``, the bench's own, which reached 1.7 GB with a million subjects.

    ``running`` hears the process's pid once it started and ``None`` once it ended, so that its
    CPU can be read while it runs."""
    done = run_measured(
        [sys.executable, "-m", "services.cli", command, *args],
        {**os.environ, **settings.to_env()},
        running,
    )
    if not done.stdout:
        raise RuntimeError(f"consent-ledger {command} printed nothing")
    return done


def run_measured(
    argv: list[str], env: dict[str, str], running: Callable[[int | None], None] | None = None
) -> Finished:
    """Run ``argv`` to its end; its peak RSS is the ``VmHWM`` of it and of every process it
    started (a replay's workers), each read every ``RSS_POLL_S`` and added up: an upper bound,
    since their peaks need not coincide. ``running``: as in :func:`run_command`."""
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE)
    peaks: dict[int, float] = {}
    if running is not None:
        running(process.pid)
    try:
        while True:
            for pid in (process.pid, *descendants(process.pid)):
                peaks[pid] = max(peaks.get(pid, 0.0), read_peak_rss_mb(pid) or 0.0)
            try:
                stdout, _ = process.communicate(timeout=RSS_POLL_S)
                break
            except subprocess.TimeoutExpired:
                continue
    finally:
        if running is not None:
            running(None)
    return Finished(stdout.decode(), sum(peaks.values()))


def descendants(pid: int, *, every_thread: bool = True) -> list[int]:
    """The processes below ``pid`` now, from ``/proc/<pid>/task/*/children``; with
    ``every_thread=False`` only those that main threads started (one file to read per process
    instead of one per thread, see ``tools.bench.cpu``)."""
    found: list[int] = []
    parents = [pid]
    while parents:
        parent = parents.pop()
        tasks = "*" if every_thread else str(parent)
        for children in Path(f"/proc/{parent}/task").glob(f"{tasks}/children"):
            try:
                below = [int(child) for child in children.read_text().split()]
            except OSError:  # the task ended meanwhile
                continue
            found.extend(below)
            parents.extend(below)
    return found


async def stop(child: Child, settings: Settings) -> None:
    """Read the child's peak RSS, then stop it (SIGTERM; SIGKILL after 15 s)."""
    if child.process.poll() is None:
        child.peak_rss_mb = read_peak_rss_mb(child.process.pid)
        child.process.terminate()
        try:
            await asyncio.to_thread(child.process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            child.process.kill()
            await asyncio.to_thread(child.process.wait)
    stack.unregister_service(settings, child.name)
