"""TLS and SASL/SCRAM against a real broker, as a deployment configures them.

A throwaway Kafka broker (the stack's own jars) gets a ``SASL_SSL`` listener with a certificate
from a CA made here and one SCRAM-SHA-256 user. Intake, the projector and the topic set-up then
talk to it through ``CONSENT_LEDGER_KAFKA_*`` settings alone: aiokafka's clients and
FastStream's broker (``broker_security``) both.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import SecretStr

from services.config import Settings
from services.stack import kafka
from services.stack.errors import StackError
from services.stack.jars import broker_classpath
from services.stack.ports import LOOPBACK, free_port
from services.stack.tools import require_java
from tests.integration.conftest import namespace, wait_projected
from tests.samples import given_json

pytestmark = pytest.mark.integration

USER, PASSWORD = "ledger", "a-scram-password-for-tests"


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str  # the SASL_SSL listener
    ca: Path  # the CA that signed the broker's certificate


SIGNS_CERTIFICATES = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_certificates(folder: Path) -> tuple[Path, Path]:
    """A CA, and a certificate for 127.0.0.1 signed by it. Returns the CA's PEM and the
    broker's PEM key store (unencrypted PKCS#8 key, then the certificate)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("consent-ledger test CA"))
        .issuer_name(_name("consent-ledger test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(SIGNS_CERTIFICATES, critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, keystore = folder / "ca.pem", folder / "broker.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    keystore.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + server.public_bytes(serialization.Encoding.PEM)
    )
    return ca_file, keystore


@pytest.fixture(scope="module")
async def secure_broker(
    stack_settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SecureBroker]:
    folder = tmp_path_factory.mktemp("secure-kafka")
    ca, keystore = write_certificates(folder)
    plain, secure, controller = free_port(), free_port(), free_port()
    paths = kafka.kafka_paths(folder)
    cluster_id = kafka.write_config(
        paths,
        port=plain,
        controller_port=controller,
        extra={
            "listeners": f"PLAINTEXT://{LOOPBACK}:{plain},SASL_SSL://{LOOPBACK}:{secure},"
            f"CONTROLLER://{LOOPBACK}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{plain},SASL_SSL://{LOOPBACK}:{secure}",
            "listener.security.protocol.map": (
                "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL"
            ),
            "sasl.enabled.mechanisms": "SCRAM-SHA-256",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": (
                "org.apache.kafka.common.security.scram.ScramLoginModule required;"
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
        },
    )
    java = require_java()
    classpath = await broker_classpath(
        stack_settings.cache_dir, stack_settings.kafka_version, lambda _: None
    )
    scram_user = f"SCRAM-SHA-256=[name={USER},password={PASSWORD}]"
    await kafka.format_storage(java, classpath, paths, cluster_id, "--add-scram", scram_user)
    broker = kafka.launch(java, classpath, paths)
    try:
        await kafka.wait_ready(f"{LOOPBACK}:{plain}", broker, paths)
        yield SecureBroker(f"{LOOPBACK}:{secure}", ca)
    finally:
        kafka.stop(broker)


def over(broker: SecureBroker, base: Settings, password: str = PASSWORD) -> Settings:
    """The settings a deployment would give: bootstrap, protocol, mechanism, user, CA."""
    return Settings.model_validate(
        {
            **base.model_dump(),
            "kafka_bootstrap": broker.bootstrap,
            "kafka_security_protocol": "SASL_SSL",
            "kafka_sasl_mechanism": "SCRAM-SHA-256",
            "kafka_sasl_username": USER,
            "kafka_sasl_password": SecretStr(password),
            "kafka_ssl_cafile": broker.ca,
        }
    )


@pytest.fixture
async def settings(secure_broker: SecureBroker, stack_settings: Settings) -> Settings:
    """A fresh namespace whose topics live on the SASL_SSL broker (intake and the projector
    fixtures use it)."""
    return await namespace(over(secure_broker, stack_settings))


async def test_an_event_goes_from_http_to_postgresql_over_sasl_ssl(
    settings: Settings, intake: httpx.AsyncClient, projector: httpx.AsyncClient
) -> None:
    answer = await intake.post("/v1/events", json=given_json("crm-tls"))
    assert answer.status_code == 202, answer.text
    pool = await asyncpg.create_pool(settings.database_url)
    try:
        await wait_projected(pool, 1)
        row = await pool.fetchrow("SELECT subject_id, version FROM subscribers")
    finally:
        await pool.close()
    assert row is not None
    assert (row["subject_id"], row["version"]) == ("crm-tls", 1)


async def test_a_wrong_password_is_refused_with_a_clear_error(
    secure_broker: SecureBroker, stack_settings: Settings
) -> None:
    wrong = over(secure_broker, stack_settings, password="not-the-password")
    with pytest.raises(StackError, match="cannot create topics") as refused:
        await kafka.ensure_topics(wrong)
    said = str(refused.value)
    assert secure_broker.bootstrap in said
    assert "over SASL_SSL" in said
    assert "_SASL_PASSWORD" in said


async def test_a_service_refused_by_kafka_says_which_settings_to_check(
    secure_broker: SecureBroker, stack_settings: Settings
) -> None:
    """Not only ``topics create``: intake started with a wrong password stops with the same
    account, in one log line, and a failing exit code."""
    wrong = await namespace(over(secure_broker, stack_settings, password="not-the-password"))
    env = {**os.environ, **wrong.to_env(), "CONSENT_LEDGER_LOG_LEVEL": "WARNING"}
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "intake"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode != 0
    (line,) = [orjson.loads(x) for x in done.stderr.splitlines() if "cannot start" in x]
    assert line["level"] == "error"
    assert line["message"].startswith(
        f"cannot start: Kafka at {secure_broker.bootstrap} did not answer or refused us over "
        "SASL_SSL"
    )
    assert "_SASL_PASSWORD" in line["message"]
