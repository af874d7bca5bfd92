"""Settings for every process, read from environment variables in one place.

The same names are used by ``make run``, the test suite and docker-compose.yml.
"""

from __future__ import annotations

import json
import os
import ssl
from pathlib import Path
from typing import Any, Literal, Self

from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from pydantic import BaseModel, Field, HttpUrl, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


def _usable_cpus() -> int:
    """The CPUs this process may run on (its affinity, where the platform tells it)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


class Webhook(BaseModel):
    """A mail tool's endpoint for feed changes; every POST is signed with ``secret``."""

    url: HttpUrl
    secret: str = Field(min_length=16, repr=False, description="HMAC-SHA-256 key, shared.")


class Settings(BaseSettings):
    """Runtime configuration; every field maps to ``CONSENT_LEDGER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CONSENT_LEDGER_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "postgresql://consent@127.0.0.1:5432/consent_ledger"

    ledger_topic: str = "consent.ledger.v1"
    intake_topic: str = "consent.intake.v1"
    dead_letter_topic: str = "consent.deadletter.v1"
    ledger_partitions: int = Field(default=6, ge=1)

    projector_group: str = "consent-ledger-projector"
    intake_group: str = "consent-ledger-intake"
    projector_batch_max: int = Field(default=2000, ge=1)
    projector_batch_timeout_ms: int = Field(default=100, ge=1)
    projector_writers: int = Field(default=2, ge=1)
    replay_processes: int = Field(
        default_factory=_usable_cpus,
        ge=1,
        description="Processes a replay is split over, by partition; default: the CPUs usable.",
    )

    intake_host: str = "127.0.0.1"
    intake_port: int = 8080
    projector_host: str = "127.0.0.1"
    projector_port: int = 8081
    intake_transactional_id: str | None = None
    produce_timeout_s: float = Field(default=10.0, gt=0)

    register_file: Path | None = Field(
        default=None, description="The register (TOML); default: the shipped seed register."
    )
    stack_dir: Path = Field(
        default=ROOT / ".stack",
        description="Where secrets that are not configured are generated (and, in development, "
        "where the local stack runs: tools/stack/settings.py).",
    )
    log_level: str = "INFO"

    master_key_file: Path | None = Field(
        default=None,
        description="File holding the master key (base64 of 32 bytes) that wraps every data key; "
        "default: the local stack's generated key in <stack_dir>/secrets/master.key.",
    )
    master_key: SecretStr | None = Field(
        default=None, description="The master key itself (base64), instead of a file."
    )
    identity_secret_file: Path | None = Field(
        default=None,
        description="File holding the HMAC secret of the e-mail identity index; default: the "
        "local stack's generated one in <stack_dir>/secrets/identity.key.",
    )
    identity_secret: SecretStr | None = Field(
        default=None, description="The identity index secret itself (base64), instead of a file."
    )

    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] | None = None
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = Field(
        default=None, description="CA bundle that signed the brokers' certificates."
    )
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate (mTLS).")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Client key (mTLS).")

    @model_validator(mode="after")
    def _sasl_is_complete(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_") and not (
            self.kafka_sasl_mechanism and self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                "kafka_security_protocol: SASL needs kafka_sasl_mechanism, kafka_sasl_username "
                "and kafka_sasl_password"
            )
        return self

    # The eligibility feed for mail tools (docs/mail-tools.md).
    feed_topic: str = "consent.feed.v1"
    feed_partitions: int = Field(default=6, ge=1)
    feed_batch_max: int = Field(default=1000, ge=1)
    feed_poll_interval_ms: int = Field(default=100, ge=1)
    feed_webhooks: list[Webhook] = Field(
        default_factory=list, description='JSON: [{"url": "https://...", "secret": "..."}].'
    )
    feed_webhook_max_attempts: int = Field(default=8, ge=1)
    feed_webhook_backoff_s: float = Field(default=1.0, gt=0)
    feed_webhook_timeout_s: float = Field(default=5.0, gt=0)
    feed_forget_after_s: int = Field(
        default=3600,
        ge=2,
        description="After an erasure, no record of the feed topic holds the person's address "
        "for longer than this (topic configs and a tombstone re-send; docs/mail-tools.md).",
    )
    signing_key_file: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM) that signs checkpoints and receipts; default: "
        "one the local stack generates in its stack dir (mode 0600).",
    )
    checkpoint_every: int = Field(
        default=10_000,
        ge=1,
        description="The projector signs a checkpoint per partition "
        "once its chain has grown by this many positions.",
    )

    def to_env(self) -> dict[str, str]:
        """These settings as the environment variables that would produce them (lists as
        JSON, secrets in clear: this is how child processes receive them)."""
        return {
            f"CONSENT_LEDGER_{name.upper()}": _plain(getattr(self, name))
            for name, value in self.model_dump().items()
            if value is not None
        }

    def kafka_options(self) -> dict[str, Any]:
        """Connection options for every aiokafka client: TLS and SASL/SCRAM pass through."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.kafka_bootstrap,
            "security_protocol": self.kafka_security_protocol,
        }
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            context = ssl.create_default_context(
                cafile=str(self.kafka_ssl_cafile) if self.kafka_ssl_cafile else None
            )
            if self.kafka_ssl_certfile:
                keyfile = str(self.kafka_ssl_keyfile) if self.kafka_ssl_keyfile else None
                context.load_cert_chain(str(self.kafka_ssl_certfile), keyfile)
            options["ssl_context"] = context
        if self.kafka_security_protocol.startswith("SASL_"):
            assert self.kafka_sasl_password is not None  # checked when the settings were read
            options |= {
                "sasl_mechanism": self.kafka_sasl_mechanism,
                "sasl_plain_username": self.kafka_sasl_username,
                "sasl_plain_password": self.kafka_sasl_password.get_secret_value(),
            }
        return options


def _plain(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, list):
        return json.dumps(
            [v.model_dump(mode="json") if isinstance(v, BaseModel) else v for v in value]
        )
    return str(value)


def broker_security(settings: Settings) -> BaseSecurity | None:
    """The same TLS and SASL settings in FastStream's terms (its broker makes its own clients)."""
    options = settings.kafka_options()
    context = options.get("ssl_context")
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context, use_ssl=True)
    kind = {
        "SCRAM-SHA-256": SASLScram256,
        "SCRAM-SHA-512": SASLScram512,
        "PLAIN": SASLPlaintext,
    }[str(settings.kafka_sasl_mechanism)]
    return kind(
        str(settings.kafka_sasl_username),
        str(options["sasl_plain_password"]),
        ssl_context=context,
        use_ssl=protocol == "SASL_SSL",
    )
