"""The project's Kafka topics and their configs: created by ``consent-ledger topics create`` in
production (docker-compose's setup) and by the local stack alike, so both get the same topics.
"""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from services.config import Settings
from services.messaging.forgetting import feed_topic_configs
from services.messaging.unreachable import unreachable

DAY_MS = 24 * 3600 * 1000
SEVEN_DAYS_MS = 7 * DAY_MS


class TopicsError(Exception):
    """The topics could not be created or configured; the message says what to check.

    The CLIs print it as is and exit with status 2, so it must be self-explanatory.
    """


def topic_specs(settings: Settings) -> list[NewTopic]:
    """The project's topics: the ledger is kept forever, intake for a week, the feed compacted."""
    keep_forever = {"retention.ms": "-1", "cleanup.policy": "delete"}
    return [
        NewTopic(
            settings.ledger_topic, settings.ledger_partitions, 1,
            topic_configs={**keep_forever, "min.insync.replicas": "1"},
        ),
        NewTopic(
            settings.intake_topic, 3, 1,
            topic_configs={"retention.ms": str(SEVEN_DAYS_MS), "cleanup.policy": "delete"},
        ),
        # Dead letters of the intake topic may hold personal data in clear: kept 30 days.
        NewTopic(
            settings.dead_letter_topic, 1, 1,
            topic_configs={"retention.ms": str(30 * DAY_MS), "cleanup.policy": "delete"},
        ),
        # The eligibility feed: the latest entry per subject is kept forever, older ones (and
        # the addresses they held) are compacted away within the forget bound; an erasure's
        # tombstone stays a week, so a consumer offline for less than that still sees it.
        NewTopic(
            settings.feed_topic, settings.feed_partitions, 1,
            topic_configs=feed_topic_configs(settings.feed_forget_after_s),
        ),
    ]  # fmt: skip


async def ensure_topics(settings: Settings) -> None:
    """Create the project's topics; ones that already exist are left as they are, except that
    the feed topic gets its configs again (one made before the forget bound has none of it)."""
    admin = AIOKafkaAdminClient(**settings.kafka_options())
    try:
        await admin.start()
        response = await admin.create_topics(topic_specs(settings))
        failures = [problem for e in response.topic_errors if (problem := _topic_problem(e))]
        if not failures:
            failures = await _set_feed_configs(admin, settings)
    except KafkaError as exc:
        raise TopicsError(f"cannot create topics: {unreachable(settings, exc)}") from exc
    finally:
        await admin.close()
    if failures:
        raise TopicsError("could not create Kafka topics: " + "; ".join(failures))


async def _set_feed_configs(admin: AIOKafkaAdminClient, settings: Settings) -> list[str]:
    """Give the feed topic its configs; returns the failures as `topic: reason`.

    aiokafka 0.14 has only the legacy AlterConfigs, which replaces all of a topic's overrides:
    the feed's are all project settings, so a hand-made override of it does not survive."""
    configs = feed_topic_configs(settings.feed_forget_after_s)
    resource = ConfigResource(ConfigResourceType.TOPIC, settings.feed_topic, configs)
    responses = await admin.alter_configs([resource])
    return [
        f"{name}: {message or f'error code {code}'}"
        for response in responses
        for code, message, _, name in response.resources
        if code
    ]


def _topic_problem(entry: tuple[str, int, str | None] | tuple[str, int]) -> str | None:
    """None for created or already existing; else `topic: reason` (v0 responses lack a message)."""
    name, code, *message = entry
    if code in (0, TopicAlreadyExistsError.errno):
        return None
    return f"{name}: {message[0] if message and message[0] else f'error code {code}'}"
