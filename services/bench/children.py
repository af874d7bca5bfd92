"""The services under test, run as child processes (as ``consent-ledger run`` does) so that
their peak resident memory can be read from ``/proc``."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from services import runner, stack
from services.config import Settings

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
    """The HTTP service called ``name`` as ``consent-ledger run`` starts it."""
    return next(s for s in runner.services_of(settings) if s.name == name)


async def start(name: str, settings: Settings) -> Child:
    """Spawn ``consent-ledger <name>`` as ``consent-ledger run`` does, register it with the
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


@dataclass(frozen=True)
class Finished:
    """A command run to its end: what it printed, and its peak resident memory."""

    stdout: str
    peak_rss_mb: float


def run_command(command: str, settings: Settings, *args: str) -> Finished:
    """Run ``consent-ledger <command> <args>`` to its end in a process of its own, as a user
    runs it (the process settings of ``services/process.py`` included). Its progress on stderr
    is shown as it comes; its peak RSS comes from the kernel's account of it (``wait4``)."""
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", command, *args],
        env={**os.environ, **settings.to_env()},
        stdout=subprocess.PIPE,
    )
    assert process.stdout is not None
    with process.stdout:
        stdout = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if not stdout:
        raise RuntimeError(f"consent-ledger {command} printed nothing (exit {process.returncode})")
    return Finished(stdout.decode(), usage.ru_maxrss / 1024)  # KiB on Linux


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
