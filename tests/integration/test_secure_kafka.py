"""TLS, SASL and client certificates against a real broker, as a deployment configures them.

A throwaway Kafka broker (the stack's own jars) gets a certificate from a CA made here and three
listeners: ``SASL_SSL`` (SCRAM-SHA-256 and SCRAM-SHA-512 users), ``SASL_PLAINTEXT`` (PLAIN) and
``SSL`` that requires a client certificate. Intake, the projector and the topic set-up talk to
it through ``CONSENT_LEDGER_KAFKA_*`` settings alone, in each of the four ways: aiokafka's
clients and FastStream's broker (``broker_security``) both.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

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
from services.messaging.appender import service_appender
from services.messaging.records import AppendError, OutRecord
from services.messaging.topics import TopicsError, ensure_topics
from tests.integration.conftest import namespace, wait_projected
from tests.samples import given_json
from tools.stack import kafka
from tools.stack.jars import broker_classpath
from tools.stack.ports import LOOPBACK, free_port
from tools.stack.settings import StackSettings
from tools.stack.tools import require_java

pytestmark = pytest.mark.integration

USER, PASSWORD = "ledger", "a-scram-password-for-tests"


@dataclass(frozen=True)
class SecureBroker:
    bootstrap: str  # the SASL_SSL listener
    ca: Path  # the CA that signed the broker's certificate and the client's
    listeners: dict[str, str]  # security protocol -> address
    client: tuple[Path, Path]  # a certificate the SSL listener accepts, and its key


#: The ways a deployment can connect: (protocol, SASL mechanism or None).
MODES = {
    "SASL_SSL, SCRAM-SHA-256": ("SASL_SSL", "SCRAM-SHA-256"),
    "SASL_SSL, SCRAM-SHA-512": ("SASL_SSL", "SCRAM-SHA-512"),
    "SASL_PLAINTEXT, PLAIN": ("SASL_PLAINTEXT", "PLAIN"),
    "SSL, client certificate": ("SSL", None),
}


SIGNS_CERTIFICATES = x509.KeyUsage(
    digital_signature=True, content_commitment=False, key_encipherment=False,
    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
    encipher_only=False, decipher_only=False,
)  # fmt: skip


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_certificates(folder: Path) -> tuple[Path, Path, tuple[Path, Path]]:
    """A CA, a certificate for 127.0.0.1 and one for a client, signed by it. Returns the CA's
    PEM, the broker's PEM key store (unencrypted PKCS#8 key, then the certificate), and the
    client's certificate and key."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("consent-ledger test CA")
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, [
        (x509.BasicConstraints(ca=True, path_length=0), True), (SIGNS_CERTIFICATES, True),
    ])  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    client_key = ec.generate_private_key(ec.SECP256R1())
    loopback = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(LOOPBACK))]
    server = _certificate(_name("localhost"), key, ca_name, ca_key, [
        (x509.SubjectAlternativeName(loopback), False),
    ])  # fmt: skip
    client = _certificate(_name("consent-ledger intake"), client_key, ca_name, ca_key, [])
    ca_file, keystore = folder / "ca.pem", folder / "broker.pem"
    client_file, client_key_file = folder / "client.pem", folder / "client.key"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    keystore.write_bytes(_pem_key(key) + server.public_bytes(serialization.Encoding.PEM))
    client_file.write_bytes(client.public_bytes(serialization.Encoding.PEM))
    client_key_file.write_bytes(_pem_key(client_key))
    return ca_file, keystore, (client_file, client_key_file)


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    issuer_key: ec.EllipticCurvePrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
) -> x509.Certificate:
    """A certificate valid for a day, with ``(extension, critical)`` pairs."""
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@pytest.fixture(scope="module")
async def secure_broker(
    stack_settings: StackSettings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[SecureBroker]:
    folder = tmp_path_factory.mktemp("secure-kafka")
    ca, keystore, client = write_certificates(folder)
    plain, controller = free_port(), free_port()
    listeners = {protocol: f"{LOOPBACK}:{free_port()}" for protocol, _ in MODES.values()}
    advertised = ",".join(
        [f"PLAINTEXT://{LOOPBACK}:{plain}", *(f"{p}://{a}" for p, a in listeners.items())]
    )
    scram = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
    paths = kafka.kafka_paths(folder)
    cluster_id = kafka.write_config(
        paths,
        port=plain,
        controller_port=controller,
        extra={
            "listeners": f"{advertised},CONTROLLER://{LOOPBACK}:{controller}",
            "advertised.listeners": advertised,
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,"
            + ",".join(f"{p}:{p}" for p in listeners),
            "listener.name.sasl_ssl.sasl.enabled.mechanisms": "SCRAM-SHA-256,SCRAM-SHA-512",
            "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config": scram,
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config": scram,
            "listener.name.sasl_plaintext.sasl.enabled.mechanisms": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": (
                "org.apache.kafka.common.security.plain.PlainLoginModule required "
                f'user_{USER}="{PASSWORD}";'
            ),
            "listener.name.ssl.ssl.client.auth": "required",
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(ca),
        },
    )
    java = require_java()
    classpath = await broker_classpath(
        stack_settings.cache_dir, stack_settings.kafka_version, lambda _: None
    )
    users = [
        arg
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512")
        for arg in ("--add-scram", f"{mechanism}=[name={USER},password={PASSWORD}]")
    ]
    await kafka.format_storage(java, classpath, paths, cluster_id, *users)
    broker = kafka.launch(java, classpath, paths)
    try:
        await kafka.wait_ready(f"{LOOPBACK}:{plain}", broker, paths)
        yield SecureBroker(listeners["SASL_SSL"], ca, listeners, client)
    finally:
        kafka.stop(broker)


def over(
    broker: SecureBroker,
    base: Settings,
    password: str = PASSWORD,
    mode: str = "SASL_SSL, SCRAM-SHA-256",
) -> Settings:
    """The settings a deployment would give: bootstrap, protocol, and per protocol the
    mechanism, user and password, the CA, or the client's certificate."""
    protocol, mechanism = MODES[mode]
    given: dict[str, object] = {
        "kafka_bootstrap": broker.listeners[protocol],
        "kafka_security_protocol": protocol,
    }
    if mechanism is not None:
        given |= {
            "kafka_sasl_mechanism": mechanism,
            "kafka_sasl_username": USER,
            "kafka_sasl_password": SecretStr(password),
        }
    if protocol.endswith("SSL"):
        given["kafka_ssl_cafile"] = broker.ca
    if protocol == "SSL":
        given["kafka_ssl_certfile"], given["kafka_ssl_keyfile"] = broker.client
    return Settings.model_validate({**base.model_dump(), **given})


@pytest.fixture(params=list(MODES))
async def settings(
    request: pytest.FixtureRequest, secure_broker: SecureBroker, stack_settings: StackSettings
) -> Settings:
    """A fresh namespace whose topics live on the secure broker, reached in one of the
    :data:`MODES` (intake and the projector fixtures use it)."""
    return await namespace(over(secure_broker, stack_settings, mode=request.param))


async def test_an_event_goes_from_http_to_postgresql_in_each_mode(
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
    secure_broker: SecureBroker, stack_settings: StackSettings
) -> None:
    wrong = over(secure_broker, stack_settings, password="not-the-password")
    with pytest.raises(TopicsError, match="cannot create topics") as refused:
        await ensure_topics(wrong)
    said = str(refused.value)
    assert secure_broker.bootstrap in said
    assert "over SASL_SSL" in said
    assert "_SASL_PASSWORD" in said


async def test_a_service_refused_by_kafka_says_which_settings_to_check(
    secure_broker: SecureBroker, stack_settings: StackSettings
) -> None:
    """Not only ``topics create``: the projector started with a wrong password stops with the
    same account in one error line and a failing exit code; intake, which keeps serving (its
    appends answer 503 until Kafka lets it in), says the same in each retry's warning."""
    right = await namespace(over(secure_broker, stack_settings))  # its topics and database
    wrong = right.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    env = {**os.environ, **wrong.to_env(), "CONSENT_LEDGER_LOG_LEVEL": "WARNING"}
    explained = f"Kafka at {secure_broker.bootstrap} did not answer or refused us over SASL_SSL"
    projector = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "services.cli", "projector"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert projector.returncode != 0
    (line,) = [log for log in map(orjson.loads, projector.stderr.splitlines()) if
               log["message"].startswith("cannot start")]  # fmt: skip
    assert line["level"] == "error"
    assert line["message"].startswith(f"cannot start: {explained}")
    assert "_SASL_PASSWORD" in line["message"]

    warning = await asyncio.to_thread(first_log, env, "intake", "intake topic consumer failed")
    assert warning["level"] == "warning"
    assert warning["error"].startswith(explained)
    assert "_SASL_PASSWORD" in warning["error"]


async def test_an_append_refused_by_kafka_says_which_settings_to_check(
    secure_broker: SecureBroker, stack_settings: StackSettings, caplog: pytest.LogCaptureFixture
) -> None:
    """The appender's warning, which every service logs when an append fails, gives the same
    account: the caller hears that nothing was appended, the operator which settings to check."""
    right = await namespace(over(secure_broker, stack_settings))
    wrong = right.model_copy(update={"kafka_sasl_password": SecretStr("not-the-password")})
    appender = service_appender(wrong, "test-append-wrong-password")
    await appender.start()
    try:
        with (
            caplog.at_level(logging.WARNING, logger="services.messaging.appender"),
            pytest.raises(AppendError, match="Kafka did not accept the events"),
        ):
            await appender.append([OutRecord(wrong.ledger_topic, b"crm-1", b"{}")])
    finally:
        await appender.stop()
    (warning,) = [r for r in caplog.records if r.getMessage().startswith("append failed")]
    error = warning.__dict__["error"]
    assert error.startswith(
        f"Kafka at {secure_broker.bootstrap} did not answer or refused us over SASL_SSL"
    ), error
    assert "_SASL_PASSWORD" in error


def first_log(
    env: dict[str, str], service: str, message: str, within_s: float = 90.0
) -> dict[str, Any]:
    """The first JSON log line of a service that starts with ``message``; the service is
    stopped then."""
    child = subprocess.Popen(
        [sys.executable, "-m", "services.cli", service],
        env=env,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    assert child.stderr is not None
    watchdog = threading.Timer(within_s, child.kill)  # then stderr ends, and so does the loop
    watchdog.start()
    seen: list[str] = []
    try:
        for text in child.stderr:
            seen.append(text)
            if text.startswith("{") and (log := orjson.loads(text))["message"].startswith(message):
                return cast(dict[str, Any], log)
    finally:
        watchdog.cancel()
        child.terminate()
        child.wait(30)
    said = "".join(seen[-20:])
    raise AssertionError(f"{service} logged no {message!r} within {within_s:.0f} s:\n{said}")
