"""One error shape for every HTTP API: which item, which field, and why."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from events.catalog import EVENT_TYPES


class ProblemError(Exception):
    """Raised by a route to answer with :func:`problem`."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.extra = status, error, message, extra
        self.headers = headers


async def _on_problem(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ProblemError)
    answer = problem(exc.status, exc.error, exc.message, **exc.extra)
    answer.headers.update(exc.headers or {})
    return answer


def problem(status: int, error: str, message: str, **extra: Any) -> JSONResponse:
    """A JSON error body: a machine code, a sentence for people, details."""
    return JSONResponse({"error": error, "message": message, **extra}, status_code=status)


_FIELD_IN_MESSAGE = re.compile(r"^Value error, ([a-z_][a-z0-9_.]*): (.+)$", re.S)


def describe(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Pydantic errors as ``{item, field, reason}``, without the request-body plumbing."""
    described = []
    for err in errors:
        loc = [p for p in err.get("loc", ()) if p != "body" and p not in EVENT_TYPES]
        item = None
        if len(loc) >= 2 and loc[0] == "events" and isinstance(loc[1], int):
            item, loc = loc[1], loc[2:]
        kind = err.get("type", "")
        field = ".".join(str(p) for p in loc)
        reason = err.get("msg", "")
        named = _FIELD_IN_MESSAGE.match(reason)
        if not field and named:  # a model-level rule that names its field: "field: reason"
            field, reason = named.group(1), named.group(2)
        if kind in ("union_tag_invalid", "union_tag_not_found"):
            field = ".".join(filter(None, [field, "type"]))
        entry: dict[str, Any] = {"field": field or None, "reason": reason, "type": kind}
        if item is not None:
            entry = {"item": item, **entry}
        described.append(entry)
    return described


def invalid_message(errors: Sequence[dict[str, Any]]) -> str:
    """One sentence for a 422: which items are invalid, and that nothing was accepted."""
    bad_items = sorted({e["item"] for e in errors if "item" in e})
    if not bad_items:
        return "the request is invalid; nothing was accepted"
    return (
        f"{len(bad_items)} item(s) invalid ({', '.join(map(str, bad_items))}); nothing was accepted"
    )


#: Called with the request body (if it parsed) and the described errors of a refused request.
RejectionHook = Callable[[Any, list[dict[str, Any]]], None]


def _validation_handler(on_rejected: RejectionHook | None) -> Any:
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = exc.errors()
        malformed = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if malformed is not None:
            if on_rejected is not None:
                on_rejected(None, [{"field": None, "type": "malformed_json"}])
            reason = malformed.get("ctx", {}).get("error", "")
            return problem(400, "malformed_json", f"the request body is not valid JSON: {reason}")
        items = describe(errors)
        if on_rejected is not None:
            on_rejected(exc.body, items)
        return problem(422, "validation_failed", invalid_message(items), errors=items)

    return handle


def install_error_handlers(app: FastAPI, on_rejected: RejectionHook | None = None) -> None:
    """Answer validation errors and :class:`ProblemError` in the shared shape."""
    app.add_exception_handler(RequestValidationError, _validation_handler(on_rejected))
    app.add_exception_handler(ProblemError, _on_problem)
