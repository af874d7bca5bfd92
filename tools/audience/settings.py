"""The reference consumer's settings: the product's (Kafka, the feed topic) plus the database
of the mail tool it keeps in sync. Only the consumer reads that one, so the product's
``Settings`` does not carry it; the variable keeps its name,
``CONSENT_LEDGER_AUDIENCE_DATABASE_URL``."""

from __future__ import annotations

from pydantic import Field

from services.config import Settings


class AudienceSettings(Settings):
    """``Settings`` and the audience's database, from the same ``CONSENT_LEDGER_*`` names."""

    audience_database_url: str | None = Field(
        default=None, description="The reference audience consumer's database; default: ours."
    )
