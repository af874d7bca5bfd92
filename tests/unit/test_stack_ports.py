"""Port parsing, conflict detection and the isolated test-stack settings."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from services.config import Settings
from tools.stack import StackError, StackSettings, free_port, isolated_settings
from tools.stack.ports import (
    controller_port,
    kafka_port,
    port_in_use,
    postgres_port,
    require_free,
    split_host_port,
)


def test_ports_come_from_settings() -> None:
    settings = StackSettings(
        kafka_bootstrap="127.0.0.1:19092",
        database_url="postgresql://consent@127.0.0.1:15432/consent_ledger",
    )
    assert kafka_port(settings) == 19092
    assert controller_port(settings) == 19093
    assert postgres_port(settings) == 15432
    assert postgres_port(Settings(database_url="postgresql://consent@db/x")) == 5432


def test_bad_bootstrap_is_explained() -> None:
    with pytest.raises(StackError, match="host:port"):
        split_host_port("localhost")


def test_taken_port_is_named() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert port_in_use(port)
        with pytest.raises(StackError, match=f"port {port} .*PostgreSQL.*already in use"):
            require_free(port, "PostgreSQL", "CONSENT_LEDGER_DATABASE_URL")
    assert not port_in_use(port)


def test_free_port_is_free() -> None:
    assert not port_in_use(free_port())


def test_isolated_settings_use_a_nested_dir_and_other_ports(tmp_path: Path) -> None:
    base = StackSettings(stack_dir=tmp_path)
    isolated = isolated_settings(base)
    assert isolated.stack_dir == tmp_path / "test"
    ports = {
        kafka_port(isolated),
        controller_port(isolated),
        postgres_port(isolated),
        isolated.intake_port,
        isolated.projector_port,
    }
    assert len(ports) == 5
    assert kafka_port(base) not in ports
    assert isolated.database_url.startswith("postgresql://consent@127.0.0.1:")
    assert isolated.database_url.endswith("/consent_ledger")
