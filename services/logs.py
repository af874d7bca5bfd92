"""Structured JSON logs, one object a line.

Records name subject ids and event ids; they never carry personal data. Only whitelisted
``extra`` fields are written, so an e-mail address passed by mistake does not reach the log.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

import orjson

#: ``extra`` fields that may appear in a log line; anything else is dropped.
ALLOWED_FIELDS = frozenset(
    {
        "subject_id",
        "subject_ids",
        "event_id",
        "event_ids",
        "event_type",
        "channel",
        "partition",
        "partitions",
        "offset",
        "records",
        "applied",
        "skipped",
        "error",
        "service",
        "url",
        "attempt",
    }
)


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: v for k, v in record.__dict__.items() if k in ALLOWED_FIELDS})
        if record.exc_info and record.exc_info[0] is not None:
            line["exception"] = record.exc_info[0].__name__
        return orjson.dumps(line, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


def configure(level: str = "INFO") -> None:
    """Send every logger's records to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
