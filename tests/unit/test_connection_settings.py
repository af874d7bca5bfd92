"""TLS and SASL/SCRAM settings reach every Kafka client, in aiokafka's and FastStream's terms."""

from __future__ import annotations

import ssl

import pytest
from faststream.security import BaseSecurity, SASLScram512
from pydantic import SecretStr, ValidationError

from services.config import Settings, broker_security


def test_plaintext_is_the_default_and_passes_no_security() -> None:
    settings = Settings(kafka_bootstrap="k:9092")
    assert settings.kafka_options() == {
        "bootstrap_servers": "k:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert broker_security(settings) is None


def test_sasl_scram_over_tls_reaches_both_client_kinds() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ledger",
        kafka_sasl_password=SecretStr("s3cret"),
    )
    options = settings.kafka_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (options["sasl_plain_username"], options["sasl_plain_password"]) == ("ledger", "s3cret")
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED
    security = broker_security(settings)
    assert isinstance(security, SASLScram512)
    assert security.use_ssl is True
    assert "s3cret" not in repr(settings), "the password is a secret in reprs and logs"
    assert settings.to_env()["CONSENT_LEDGER_KAFKA_SASL_PASSWORD"] == "s3cret"


def test_tls_alone() -> None:
    security = broker_security(Settings(kafka_security_protocol="SSL"))
    assert type(security) is BaseSecurity
    assert security.use_ssl is True


def test_sasl_without_credentials_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="kafka_security_protocol: SASL needs"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism="SCRAM-SHA-256")
