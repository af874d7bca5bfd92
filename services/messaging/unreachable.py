"""What to tell an operator when Kafka does not answer or refuses the ledger's clients.

With TLS or SASL, aiokafka says only that it could not bootstrap; the reason (a refused
password, an unknown CA) is in the log line it wrote just before. So the message names the
settings to check.
"""

from __future__ import annotations

from aiokafka.errors import KafkaConnectionError

from services.config import Settings


def unreachable(settings: Settings, exc: Exception) -> str:
    where = f"Kafka at {settings.kafka_bootstrap}"
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return (
            f"{where} did not answer ({exc}). Is it running, and is "
            "CONSENT_LEDGER_KAFKA_BOOTSTRAP right? The local stack starts with: "
            "python -m tools stack up"
        )
    return (
        f"{where} did not answer or refused us over {protocol} ({exc}). Check that "
        "CONSENT_LEDGER_KAFKA_SECURITY_PROTOCOL, _SASL_MECHANISM, _SASL_USERNAME, _SASL_PASSWORD "
        "and _SSL_CAFILE match the broker's listener; aiokafka's log line above says why"
    )


def failure_reason(settings: Settings, exc: Exception) -> str:
    """A failed Kafka call, for the operator's log: the settings to check when Kafka could not
    be reached or refused us, the error itself otherwise."""
    return unreachable(settings, exc) if isinstance(exc, KafkaConnectionError) else repr(exc)
