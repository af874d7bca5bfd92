"""A subject's history as people read it: each personal section opened, or marked.

The mirror holds events exactly as the log does (sealed); reading opens them with the
subject's live keys. A shredded key leaves the non-personal skeleton and the marker
``personal_state: shredded``; a reader without the right sees ``withheld``; a section that was
changed is refused (``tampered``), never decoded to garbage.
"""

from __future__ import annotations

from typing import Any

from events.sealing import TamperedError, reveal
from projections.queries import read_history
from services.privacy.keystore import KeyStore, Pool


class HistoryReader:
    def __init__(self, pool: Pool, keys: KeyStore) -> None:
        self._pool = pool
        self._keys = keys

    async def read(self, subject_id: str, *, personal: bool) -> list[dict[str, Any]]:
        """Every event about the subject in log order; personal data only if ``personal``."""
        history = await read_history(self._pool, subject_id)
        keys = await self._keys.all_of(subject_id) if personal else {}
        out = []
        for entry in history:
            event = entry["event"]
            generation = (event.get("sealed") or {}).get("key_generation")
            key = keys.get((subject_id, generation)) if isinstance(generation, int) else None
            try:
                shown = reveal(event, key, allowed=personal)
            except TamperedError:
                shown = {k: v for k, v in event.items() if k not in ("sealed", "personal")}
                shown["personal_state"] = "tampered"
            out.append({**entry, "event": shown})
        return out
