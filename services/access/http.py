"""Access control over HTTP: a bearer token on every endpoint, and the roles it may have.

401 when the caller is unknown (no token, a malformed, wrong, expired or revoked one); 403 when
the token's role may not do this. Authentication runs before the body is even validated.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Response, status
from pydantic import BaseModel, ConfigDict, Field

from events.envelope import ShortText, UtcDatetime
from services.access.tokens import (
    AuthError,
    Caller,
    Grant,
    Role,
    TokenInfo,
    TokenStore,
)
from services.errors import ProblemError

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="consent-ledger"'}
AUTH_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "No token, or a malformed, unknown, expired or revoked one."},
    403: {"description": "The token's role may not do this."},
}


def _unauthenticated(reason: str) -> ProblemError:
    return ProblemError(401, "unauthenticated", reason, headers=CHALLENGE)


class Guard:
    """Builds the dependency that admits only callers with one of the given roles."""

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens

    def allow(self, *roles: Role) -> Any:
        async def caller(
            authorization: Annotated[
                str | None, Header(description="Bearer <API token>.", include_in_schema=False)
            ] = None,
        ) -> Caller:
            scheme, _, token = (authorization or "").partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _unauthenticated("send the API token as: Authorization: Bearer <token>")
            try:
                who = await self._tokens.authenticate(token.strip())
            except AuthError as exc:
                raise _unauthenticated(str(exc)) from exc
            if who.role not in roles:
                allowed = ", ".join(roles)
                message = f"the role {who.role!r} may not do this; allowed: {allowed}"
                raise ProblemError(403, "forbidden", message)
            return who

        return Depends(caller)


def require_grant(caller: Caller, grant: Grant, *, unless: Role) -> None:
    """403 unless the caller has ``grant`` (the role ``unless`` needs none)."""
    if caller.role != unless and grant not in caller.grants:
        message = f"reading personal data needs the {grant!r} grant, which this token lacks"
        raise ProblemError(403, "forbidden", message)


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    label: ShortText = Field(description="Who or what holds the token.")
    grants: list[Grant] = Field(default_factory=list)
    expires_at: UtcDatetime | None = None


class TokenOut(BaseModel):
    token_id: str
    role: Role
    grants: list[str]
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


class IssuedOut(TokenOut):
    token: str = Field(description="The token itself: shown once, never stored.")


def _out(info: TokenInfo) -> TokenOut:
    return TokenOut.model_validate(info, from_attributes=True)


def tokens_router(tokens: TokenStore, guard: Guard) -> APIRouter:
    router = APIRouter(prefix="/v1/tokens", tags=["access"], responses=AUTH_ERRORS)
    admin = [guard.allow("admin")]

    @router.post(
        "", status_code=status.HTTP_201_CREATED, summary="Issue a token", dependencies=admin
    )
    async def issue(body: TokenIn) -> IssuedOut:
        token, info = await tokens.create(
            body.role, body.label, grants=frozenset(body.grants), expires_at=body.expires_at
        )
        return IssuedOut(token=token, **_out(info).model_dump())

    @router.get("", summary="Every token (never the secrets)", dependencies=admin)
    async def list_tokens() -> list[TokenOut]:
        return [_out(t) for t in await tokens.list()]

    @router.delete(
        "/{token_id}", status_code=204, summary="Revoke a token at once", dependencies=admin
    )
    async def revoke(token_id: Annotated[str, Path(max_length=64)]) -> Response:
        if not await tokens.revoke(token_id):
            raise ProblemError(404, "token_not_found", f"no unrevoked token {token_id!r}")
        return Response(status_code=204)

    return router
