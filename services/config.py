"""Settings for every process, read from environment variables in one place.

The same names are used by ``make run``, the test suite and docker-compose.yml.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Runtime configuration; every field maps to ``CONSENT_LEDGER_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CONSENT_LEDGER_", extra="ignore")

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_controller_port: int | None = Field(
        default=None, description="The local broker's KRaft controller port; default: port + 1."
    )
    database_url: str = "postgresql://consent@127.0.0.1:5432/consent_ledger"

    ledger_topic: str = "consent.ledger.v1"
    intake_topic: str = "consent.intake.v1"
    dead_letter_topic: str = "consent.deadletter.v1"
    ledger_partitions: int = Field(default=6, ge=1)

    projector_group: str = "consent-ledger-projector"
    intake_group: str = "consent-ledger-intake"
    projector_batch_max: int = Field(default=2000, ge=1)
    projector_batch_timeout_ms: int = Field(default=100, ge=1)

    intake_host: str = "127.0.0.1"
    intake_port: int = 8080
    projector_host: str = "127.0.0.1"
    projector_port: int = 8081
    intake_transactional_id: str | None = None
    produce_timeout_s: float = Field(default=10.0, gt=0)

    register_file: Path | None = Field(
        default=None, description="The register (TOML); default: the shipped seed register."
    )
    stack_dir: Path = ROOT / ".stack"
    cache_dir: Path = Field(
        default=ROOT / ".stack" / "cache", description="Downloads shared by every stack (jars)."
    )
    stack_postgres: bool | None = Field(
        default=None,
        description="Start the stack's own PostgreSQL; default: only when no database URL is set.",
    )
    kafka_version: str = "4.1.1"
    log_level: str = "INFO"

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
        """These settings as the environment variables that would produce them."""
        return {
            f"CONSENT_LEDGER_{name.upper()}": str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }
