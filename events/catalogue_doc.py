"""The event catalogue as Markdown, generated from the models (never written twice)."""

from __future__ import annotations

import inspect
from typing import Any

from events.catalog import EVENT_TYPES

HEADER = """# Event catalogue

Generated from the event models by `consent-ledger schemas export` (`make schemas`); a test
fails when this file is stale. Every event also carries the envelope: `event_id`,
`schema_version`, `recorded_at` (set by the ledger), `subject_id`, `occurred_at`, `source`,
`correlation_id`, `causation_id` and the `personal` section (e-mail, IP address, user agent,
note: the only place personal data may appear). Producers send `personal` in clear; from
version 2 the ledger stores it encrypted under the subject's data key in `sealed` (and
`personal` is empty in the log), so that erasure can shred it. The JSON Schemas are in
`events/schemas/`, including those of earlier versions.

Personal data anywhere else is refused on intake, naming the field (422 over HTTP, a dead
letter over Kafka): an e-mail address, an IP address or a phone number in `source.system`,
`source.actor` or any free text field of `data` (`form_url` included), and a `subject_id` with
`@` in it. Put such values in `personal`; see docs/privacy.md. Events already in the log are
read as they were written.
"""


def _type_of(prop: dict[str, Any], defs: dict[str, Any]) -> str:
    if "$ref" in prop:
        return _type_of(defs[prop["$ref"].rsplit("/", 1)[1]], defs)
    if "enum" in prop:
        return " \\| ".join(f"`{v}`" for v in prop["enum"])
    if "const" in prop:
        return f"`{prop['const']}`"
    if "anyOf" in prop:
        return " or ".join(_type_of(p, defs) for p in prop["anyOf"])
    if prop.get("type") == "array":
        return f"list of {_type_of(prop.get('items', {}), defs)}"
    kind = prop.get("format") or prop.get("type") or "object"
    return str(kind)


def _data_rows(schema: dict[str, Any]) -> list[str]:
    defs = schema.get("$defs", {})
    data = defs[schema["properties"]["data"]["$ref"].rsplit("/", 1)[1]]
    required = set(data.get("required", []))
    rows = []
    for name, prop in data.get("properties", {}).items():
        description = " ".join(prop.get("description", "").split())
        need = "yes" if name in required else "no"
        rows.append(f"| `{name}` | {_type_of(prop, defs)} | {need} | {description} |")
    return rows


def catalogue_markdown() -> str:
    """The catalogue: per event type its meaning, scope, version and ``data`` fields."""
    parts = [HEADER]
    for tag, model in EVENT_TYPES.items():
        schema = model.model_json_schema()
        doc = " ".join((inspect.getdoc(model) or "").split())
        scope = (
            "one purpose (`purpose` required)"
            if "purpose" in schema["properties"]
            else ("the whole person")
        )
        parts += [
            f"\n## `{tag}` (v{model.SCHEMA_VERSION})\n",
            doc + "\n",
            f"About: {scope}.\n",
            "| data field | type | required | meaning |",
            "|---|---|---|---|",
            *_data_rows(schema),
        ]
    return "\n".join(parts) + "\n"
