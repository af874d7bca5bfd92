"""Process liveness and termination by pid, usable from a process that did not start them."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

POLL_S = 0.2


def pid_alive(pid: int) -> bool:
    """True while the process runs; a zombie counts as dead and is left to its parent to reap."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def start_time(pid: int) -> int | None:
    """Kernel start time of pid (clock ticks since boot); with the pid it names one process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rpartition(")")[2].split()[19])


def terminate(pid: int, timeout_s: float, *, group: bool = False) -> None:
    """SIGTERM, wait up to timeout_s, then SIGKILL; group=True signals the whole process group."""
    _signal(pid, signal.SIGTERM, group)
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    if pid_alive(pid) or (group and _group_exists(pid)):
        _signal(pid, signal.SIGKILL, group)
        while pid_alive(pid):
            time.sleep(POLL_S)


def _signal(pid: int, sig: signal.Signals, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _group_exists(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True
