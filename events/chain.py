"""The ledger's hash chain, pure: each position's hash covers its bytes and every earlier one.

Per partition, in offset order: ``hash = SHA-256(previous hash || record value)``, starting
from :data:`GENESIS`. The record value is the event as the ledger wrote it (``codec.encode``),
so the chain can be recomputed from the Kafka log, and from the ``ledger_events`` mirror by
re-encoding its ``payload`` (jsonb gives back the same bytes; see docs/audit.md).
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

#: The "previous hash" of a partition's first position.
GENESIS = bytes(32)


def link(previous: bytes, value: bytes) -> bytes:
    """The hash of a position whose predecessor's hash is ``previous``."""
    return hashlib.sha256(previous + value).digest()


def canonical(payload: dict[str, Any]) -> bytes:
    """The canonical bytes of a parsed event: what ``codec.encode`` writes for it."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)
