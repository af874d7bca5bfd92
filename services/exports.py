"""What the streamed exports (mailing lists, suppressions, the eligible list at an instant)
share: a parameter is refused before the first byte, and the format a client asked for.

A streamed answer has sent ``200 OK`` before its first query runs; an error after that cuts
the connection, and a CSV client left with only the header reads an empty list. So whatever
the database would refuse is refused here, as a 422 or a 404 in the shared error shape.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Annotated, Literal

from fastapi import Query, Request

from events.envelope import NoNul
from services.errors import ProblemError

Format = Literal["ndjson", "csv"]
#: Text that reaches SQL: PostgreSQL cannot store U+0000 (``CharacterNotInRepertoireError``).
SqlText = Annotated[str, NoNul]
FormatQuery = Annotated[
    Format | None,
    Query(description="ndjson (one JSON object a line) or csv; without it, csv if the Accept "
          "header names text/csv, else ndjson."),
]  # fmt: skip


def negotiated(fmt: Format | None, request: Request) -> Format:
    """An explicit ``format`` wins; otherwise a client whose Accept names ``text/csv`` (a mail
    tool that never heard of the query parameter) gets CSV."""
    if fmt is not None:
        return fmt
    accept = request.headers.get("accept", "")
    media = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    return "csv" if "text/csv" in media else "ndjson"


def known_purpose(purpose: str, purposes: Collection[str]) -> None:
    """404 ``unknown_purpose`` for a purpose outside the register: an empty list would read as
    "nobody may be mailed" where the name is wrong."""
    if purpose not in purposes:
        known = ", ".join(sorted(purposes))
        raise ProblemError(
            404, "unknown_purpose", f"purpose: {purpose!r} is not in the register ({known})"
        )
