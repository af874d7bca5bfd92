"""The local stack's settings: the product's, plus where and how the stack runs Kafka and
PostgreSQL. Only the tools read these, so the product's ``Settings`` does not carry them; the
environment variables keep their names (``CONSENT_LEDGER_CACHE_DIR``, ...)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.config import ROOT, Settings


class StackSettings(Settings):
    """``Settings`` and the dev stack's own fields, from the same ``CONSENT_LEDGER_*`` names."""

    kafka_controller_port: int | None = Field(
        default=None, description="The local broker's KRaft controller port; default: port + 1."
    )
    cache_dir: Path = Field(
        default=ROOT / ".stack" / "cache", description="Downloads shared by every stack (jars)."
    )
    stack_postgres: bool | None = Field(
        default=None,
        description="Start the stack's own PostgreSQL; default: only when no database URL is set.",
    )
    kafka_version: str = "4.1.1"
