"""The project's topic definitions, and what an operator is told when Kafka does not answer."""

from __future__ import annotations

from services.config import Settings
from services.messaging.forgetting import feed_topic_configs
from services.messaging.topics import SEVEN_DAYS_MS, _topic_problem, topic_specs
from services.messaging.unreachable import unreachable


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
