"""Bytes on the wire: orjson encoding, upcasting of old schema versions, JSON Schema export.

A change of wire format touches this package and nothing else: readers always get the current
model, because :func:`decode` upcasts older versions before validating.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from events.catalog import EVENT_ADAPTER, EVENT_TYPES, SUBMISSION_TYPES, AnyEvent
from events.envelope import FROM_LOG

RawEvent = dict[str, Any]
Upcaster = Callable[[RawEvent], RawEvent]


class DecodeError(ValueError):
    """The bytes are not an event this version of the ledger can read."""


class Upcasters:
    """Registry of one-step upcasters: ``(type, version) -> raw event of version + 1``."""

    def __init__(self) -> None:
        self._steps: dict[tuple[str, int], Upcaster] = {}

    def register(self, event_type: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        def add(step: Upcaster) -> Upcaster:
            self._steps[(event_type, from_version)] = step
            return step

        return add

    def upcast(self, raw: RawEvent) -> RawEvent:
        """Apply steps until the event reaches its type's current schema version."""
        event_type = raw.get("type")
        model = EVENT_TYPES.get(event_type) if isinstance(event_type, str) else None
        if model is None:
            raise DecodeError(f"unknown event type {event_type!r}")
        version = raw.get("schema_version")
        while isinstance(version, int) and version < model.SCHEMA_VERSION:
            step = self._steps.get((str(event_type), version))
            if step is None:
                raise DecodeError(f"no upcaster for {event_type} version {version}")
            raw = {**step(raw), "schema_version": version + 1}
            version = version + 1
        return raw


def _sealing_arrived(raw: RawEvent) -> RawEvent:
    """Version 1 -> 2: version 2 added the optional ``sealed`` section; a version 1 event
    carries its personal section in clear and is read as it is."""
    return raw


def release_upcasters() -> Upcasters:
    """The upcasters every reader of this release applies."""
    upcasters = Upcasters()
    for event_type in EVENT_TYPES:
        upcasters.register(event_type, 1)(_sealing_arrived)
    return upcasters


UPCASTERS = release_upcasters()


def encode(event: AnyEvent) -> bytes:
    """Canonical bytes of an event: sorted keys, no nulls, UTC timestamps."""
    return orjson.dumps(
        event.model_dump(mode="json", exclude_none=True), option=orjson.OPT_SORT_KEYS
    )


def decode(data: bytes | str, upcasters: Upcasters = UPCASTERS) -> AnyEvent:
    """Read an event from the log, upcasting older schema versions first."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise DecodeError("an event must be a JSON object")
    return decode_raw(raw, upcasters)


def decode_raw(raw: RawEvent, upcasters: Upcasters = UPCASTERS) -> AnyEvent:
    """Validate an already parsed event (from JSON or a ``jsonb`` column)."""
    return EVENT_ADAPTER.validate_python(upcasters.upcast(raw), context={FROM_LOG: True})


def json_schemas() -> dict[str, dict[str, Any]]:
    """JSON Schema of every event type, stored and submitted, keyed by file name."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in EVENT_TYPES.items():
        version = model.SCHEMA_VERSION
        schemas[f"{name}.v{version}.json"] = _with_id(model.model_json_schema(), name, version)
        submitted = SUBMISSION_TYPES[name].model_json_schema()
        schemas[f"{name}.v{version}.submission.json"] = _with_id(submitted, name, version)
    return schemas


def _with_id(schema: dict[str, Any], name: str, version: int) -> dict[str, Any]:
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"urn:consent-ledger:event:{name}:v{version}",
        **schema,
    }


def export_schemas(directory: Path) -> list[Path]:
    """Write every schema as pretty, sorted JSON; returns the files written."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for file_name, schema in sorted(json_schemas().items()):
        path = directory / file_name
        path.write_bytes(
            orjson.dumps(schema, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
        )
        written.append(path)
    return written
