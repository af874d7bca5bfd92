"""A service's appender that cannot reach Kafka: the caller hears AppendError, and the operator's
log line says which settings to check, not only aiokafka's bare error."""

from __future__ import annotations

import logging

import pytest
from aiokafka.errors import ProducerFenced

from services.config import Settings
from services.messaging.appender import service_appender
from services.messaging.records import AppendError, OutRecord
from services.messaging.unreachable import failure_reason
from tools.stack.ports import free_port


async def test_an_append_kafka_never_answers_is_logged_with_the_settings_to_check(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    appender = service_appender(Settings(kafka_bootstrap=bootstrap), "test-unreachable")
    await appender.start()
    try:
        with (
            caplog.at_level(logging.WARNING, "services.messaging.appender"),
            pytest.raises(AppendError, match="Kafka did not accept the events"),
        ):
            await appender.append([OutRecord("any-topic", b"subject", b"{}")])
    finally:
        await appender.stop()
    (warning,) = [r for r in caplog.records if r.getMessage().startswith("append failed")]
    said = warning.__dict__["error"]
    assert said.startswith(f"Kafka at {bootstrap} did not answer")
    assert "CONSENT_LEDGER_KAFKA_BOOTSTRAP" in said


def test_other_kafka_failures_are_logged_as_they_are() -> None:
    """A failure that is not about reaching Kafka gets no advice about connection settings."""
    fenced = ProducerFenced()
    assert failure_reason(Settings(), fenced) == repr(fenced)
