"""The broker's generated config, cluster id and topic definitions."""

from __future__ import annotations

import re
from pathlib import Path

from services.config import Settings
from services.feed.forgetting import feed_topic_configs
from services.messaging.unreachable import unreachable
from services.stack.kafka import (
    SEVEN_DAYS_MS,
    _topic_problem,
    kafka_paths,
    new_cluster_id,
    render_server_properties,
    topic_specs,
    write_config,
)


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


def test_topics_ledger_forever_intake_one_week_dead_letters_a_month_feed_compacted() -> None:
    settings = Settings(ledger_partitions=12)
    ledger, intake, dead, feed = topic_specs(settings)
    assert (ledger.name, ledger.num_partitions, ledger.replication_factor) == (
        settings.ledger_topic,
        12,
        1,
    )
    assert ledger.topic_configs == {
        "retention.ms": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": "1",
    }
    assert (intake.name, intake.num_partitions) == (settings.intake_topic, 3)
    assert intake.topic_configs["retention.ms"] == str(SEVEN_DAYS_MS) == "604800000"
    assert (dead.name, dead.num_partitions) == (settings.dead_letter_topic, 1)
    assert dead.topic_configs["retention.ms"] == str(30 * 24 * 3600 * 1000)  # may hold e-mails
    assert (feed.name, feed.num_partitions) == (settings.feed_topic, settings.feed_partitions)
    assert feed.topic_configs == feed_topic_configs(settings.feed_forget_after_s)


def test_existing_topics_are_fine_other_errors_are_reported() -> None:
    assert _topic_problem(("t", 0, None)) is None
    assert _topic_problem(("t", 36, "Topic 't' already exists.")) is None
    assert _topic_problem(("t", 37, "bad partitions")) == "t: bad partitions"
    assert _topic_problem(("t", 38)) == "t: error code 38"


def test_an_unreachable_broker_is_explained_by_its_protocol() -> None:
    plain = Settings(kafka_bootstrap="127.0.0.1:1")
    said = unreachable(plain, OSError("refused"))
    assert said.startswith("Kafka at 127.0.0.1:1 did not answer (refused).")
    assert "CONSENT_LEDGER_KAFKA_BOOTSTRAP" in said
    secure = plain.model_copy(update={"kafka_security_protocol": "SASL_SSL"})
    said = unreachable(secure, OSError("refused"))
    assert "refused us over SASL_SSL" in said
    assert "_SASL_PASSWORD" in said
