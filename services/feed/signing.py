"""How webhook bodies are signed (docs/mail-tools.md shows how a receiver checks them).

The signature is HMAC-SHA-256, keyed by the webhook's secret, over ``<timestamp>.<body>``: the
timestamp header is covered, so a receiver that refuses old timestamps refuses replays.
"""

from __future__ import annotations

import hashlib
import hmac

TIMESTAMP_HEADER = "X-Consent-Ledger-Timestamp"
SIGNATURE_HEADER = "X-Consent-Ledger-Signature"
DELIVERY_HEADER = "X-Consent-Ledger-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The value of the signature header: ``sha256=<hex digest>``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"
