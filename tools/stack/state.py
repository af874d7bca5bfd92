"""The state file `<stack_dir>/state.json`: what runs where, readable from any process."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from tools.stack import procs


class ProcessEntry(BaseModel):
    """One process we may signal later; start_time guards against a recycled pid."""

    pid: int
    start_time: int | None = None

    @classmethod
    def of(cls, pid: int) -> ProcessEntry:
        return cls(pid=pid, start_time=procs.start_time(pid))

    def alive(self) -> bool:
        return procs.pid_alive(self.pid) and procs.start_time(self.pid) == self.start_time


class ServiceEntry(ProcessEntry):
    """An HTTP service that someone else started and registered with the stack."""

    url: str


class StackState(BaseModel):
    """Everything `status` and `down` need, from a separate process than the one that ran `up`."""

    kafka_bootstrap: str = ""
    kafka_controller_port: int | None = None
    kafka: ProcessEntry | None = None
    database_url: str = ""
    postgres_port: int | None = None
    postgres: ProcessEntry | None = None
    postgres_bindir: str | None = None
    services: dict[str, ServiceEntry] = Field(default_factory=dict)


@dataclass(frozen=True)
class StackInfo:
    """What a client needs to reach a running stack."""

    kafka_bootstrap: str
    database_url: str
    services: dict[str, str]

    def to_json(self) -> dict[str, object]:
        return {
            "kafka_bootstrap": self.kafka_bootstrap,
            "database_url": self.database_url,
            "services": dict(self.services),
        }


def state_path(stack_dir: Path) -> Path:
    return stack_dir / "state.json"


def load_state(stack_dir: Path) -> StackState | None:
    """The recorded state, or None when no stack was started in stack_dir."""
    try:
        return StackState.model_validate_json(state_path(stack_dir).read_text())
    except FileNotFoundError:
        return None


def save_state(stack_dir: Path, state: StackState) -> None:
    """Write atomically so a concurrent reader never sees half a file."""
    path = state_path(stack_dir)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(state.model_dump_json(indent=2) + "\n")
    tmp.replace(path)


@contextmanager
def edit_state(stack_dir: Path) -> Iterator[StackState]:
    """Read-modify-write under a file lock: services register from several processes at once.

    The state is saved only when the block finishes without an exception.
    """
    stack_dir.mkdir(parents=True, exist_ok=True)
    with (stack_dir / "state.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = load_state(stack_dir) or StackState()
        yield state
        save_state(stack_dir, state)


def clear_state(stack_dir: Path) -> None:
    """Forget the stack once everything in it has stopped."""
    with (stack_dir / "state.lock").open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state_path(stack_dir).unlink(missing_ok=True)
