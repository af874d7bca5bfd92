"""The local broker's generated config and cluster id."""

from __future__ import annotations

import re
from pathlib import Path

from tools.stack.kafka import kafka_paths, new_cluster_id, render_server_properties, write_config


def _parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def test_server_properties_single_kraft_node_on_loopback() -> None:
    props = _parse(render_server_properties(port=9092, controller_port=9093, data_dir=Path("/d")))
    assert props["process.roles"] == "broker,controller"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["log.dirs"] == "/d"
    assert props["auto.create.topics.enable"] == "false"
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"
    assert props["log.cleaner.backoff.ms"] == "1000", "a short forget bound is kept in tests"


def test_cluster_id_has_kafka_uuid_format() -> None:
    for _ in range(200):
        cluster_id = new_cluster_id()
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
        assert not cluster_id.startswith("-")


def test_cluster_id_is_generated_once_and_kept(tmp_path: Path) -> None:
    paths = kafka_paths(tmp_path)
    first = write_config(paths, port=1000, controller_port=1001)
    second = write_config(paths, port=2000, controller_port=2001)
    assert first == second
    assert "2000" in paths.properties.read_text()
    assert "kafka.logs.dir" in paths.log4j.read_text()
