"""The state file: round trip, service registry, and status from recorded pids."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from services.config import Settings
from tools.stack import StackInfo, down, register_service, status, unregister_service
from tools.stack.state import ProcessEntry, StackState, edit_state, load_state, save_state


def _running_stack(stack_dir: Path) -> None:
    """Record this test process as the 'broker' so status sees a live stack."""
    with edit_state(stack_dir) as state:
        state.kafka = ProcessEntry.of(os.getpid())
        state.kafka_bootstrap = "127.0.0.1:19092"
        state.database_url = "postgresql://consent@127.0.0.1:15432/consent_ledger"


def test_state_round_trip(tmp_path: Path) -> None:
    state = StackState(
        kafka_bootstrap="127.0.0.1:9092",
        kafka_controller_port=9093,
        kafka=ProcessEntry(pid=10, start_time=20),
        database_url="postgresql://consent@127.0.0.1:5432/consent_ledger",
        postgres_port=5432,
    )
    save_state(tmp_path, state)
    assert load_state(tmp_path) == state


def test_no_state_means_no_stack(tmp_path: Path) -> None:
    assert load_state(tmp_path) is None
    assert status(Settings(stack_dir=tmp_path)) is None


def test_status_lists_live_services_only(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path)
    _running_stack(tmp_path)
    register_service(settings, "intake", "http://127.0.0.1:8080", os.getpid())
    gone = subprocess.Popen(["true"])
    gone.wait()
    register_service(settings, "projector", "http://127.0.0.1:8081", gone.pid)
    assert status(settings) == StackInfo(
        kafka_bootstrap="127.0.0.1:19092",
        database_url="postgresql://consent@127.0.0.1:15432/consent_ledger",
        services={"intake": "http://127.0.0.1:8080"},
    )
    unregister_service(settings, "intake")
    info = status(settings)
    assert info is not None
    assert info.services == {}


def test_status_is_none_when_recorded_broker_is_dead(tmp_path: Path) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    with edit_state(tmp_path) as state:
        state.kafka = ProcessEntry(pid=gone.pid, start_time=None)
    assert status(Settings(stack_dir=tmp_path)) is None


def test_to_json_has_the_cli_shape() -> None:
    info = StackInfo("127.0.0.1:9092", "postgresql://x", {"intake": "http://i"})
    assert info.to_json() == {
        "kafka_bootstrap": "127.0.0.1:9092",
        "database_url": "postgresql://x",
        "services": {"intake": "http://i"},
    }


def test_down_is_fine_when_nothing_runs(tmp_path: Path) -> None:
    down(Settings(stack_dir=tmp_path / "never-created"))
    down(Settings(stack_dir=tmp_path))
    assert load_state(tmp_path) is None


def test_down_stops_registered_services_and_forgets_the_stack(tmp_path: Path) -> None:
    settings = Settings(stack_dir=tmp_path)
    service = subprocess.Popen(["sleep", "60"])
    register_service(settings, "intake", "http://127.0.0.1:8080", service.pid)
    down(settings)
    assert service.wait(timeout=5) != 0
    assert load_state(tmp_path) is None
