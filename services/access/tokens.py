"""API tokens: random secrets stored only as a hash, each with a role and optional grants.

A token reads ``clt.<id>.<secret>``. The secret is 256 random bits, so one SHA-256 of it is as
good as a slow password hash (nothing to guess) and keeps the check to one indexed lookup.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, TypeAlias, get_args

import asyncpg
from pydantic import TypeAdapter

from events.envelope import ShortText
from events.identifiers import personal_data_in
from services.coalescer import Coalescer

Role = Literal["signup", "crm", "dpo", "auditor", "mail_tool", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
Grant = Literal["personal_data"]
GRANTS: tuple[Grant, ...] = get_args(Grant)
PREFIX = "clt"
Pool: TypeAlias = "asyncpg.Pool[Any]"
#: A token's label: short text without personal data (name a role, a system or a staff id).
LABEL: TypeAdapter[str] = TypeAdapter(ShortText)

#: The event types each producing role may submit (``None``: every type).
MAY_SUBMIT: dict[Role, frozenset[str] | None] = {
    "signup": frozenset(
        {"consent.requested", "consent.confirmed", "consent.given", "consent.withdrawn"}
    ),
    "crm": frozenset(
        {
            "consent.requested",
            "consent.confirmed",
            "consent.given",
            "consent.withdrawn",
            "objection.received",
            "subject.rectified",
        }
    ),
    "dpo": None,
    "auditor": frozenset(),
    "mail_tool": frozenset(),
    "admin": frozenset(),
}


class AuthError(Exception):
    """The caller is not who they say (401); the message says what is wrong with the token."""


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the token's id, role, grants and label (never its secret)."""

    token_id: str
    role: Role
    grants: frozenset[str]
    label: str

    @property
    def name(self) -> str:
        """How the ledger names this caller in events (``source.actor``, an access record's
        ``reader``), fields kept in clear. A label that looks like personal data (given before
        labels were checked) is left out rather than make every call fail; the id reads as in
        the token, ``clt.<id>``, so that an id of only digits looks like no phone number."""
        token = f"token {PREFIX}.{self.token_id}"
        if personal_data_in(self.label) is not None:
            return token
        return f"{self.label} ({token})"[:200]

    def may_submit(self, event_type: str) -> bool:
        allowed = MAY_SUBMIT[self.role]
        return allowed is None or event_type in allowed


@dataclass(frozen=True, slots=True)
class TokenInfo:
    token_id: str
    role: Role
    grants: list[str]
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


class TokenStore:
    """Issues, lists, revokes and checks tokens (the ``api_tokens`` table)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._rows: Coalescer[str, None, asyncpg.Record] = Coalescer(self._fetch)

    async def create(
        self,
        role: Role,
        label: str,
        *,
        grants: frozenset[Grant] = frozenset(),
        expires_at: datetime | None = None,
    ) -> tuple[str, TokenInfo]:
        """A new token; the returned string is shown once and never stored. The label is checked
        as the HTTP API checks it: it names the caller in events, in clear (:attr:`Caller.name`),
        so it must not contain personal data; a ``ValidationError`` says so."""
        label = LABEL.validate_python(label)
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        row = await self._pool.fetchrow(
            "INSERT INTO api_tokens (token_id, secret_hash, role, grants, label, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6) RETURNING *",
            token_id,
            _digest(secret),
            role,
            sorted(grants),
            label,
            expires_at,
        )
        assert row is not None
        return f"{PREFIX}.{token_id}.{secret}", _info(row)

    async def list(self) -> list[TokenInfo]:
        rows = await self._pool.fetch("SELECT * FROM api_tokens ORDER BY created_at, token_id")
        return [_info(r) for r in rows]

    async def revoke(self, token_id: str) -> bool:
        """Revoke at once; ``False`` if there is no such (unrevoked) token."""
        done = await self._pool.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_id = $1 AND revoked_at IS NULL",
            token_id,
        )
        return bool(done.endswith(" 1"))

    async def authenticate(self, token: str) -> Caller:
        """The caller a presented token belongs to; raises :class:`AuthError` otherwise."""
        prefix, _, rest = token.partition(".")
        token_id, _, secret = rest.partition(".")
        if prefix != PREFIX or not token_id or not secret:
            raise AuthError("the token is malformed (expected clt.<id>.<secret>)")
        row = (await self._rows.get({token_id: None})).get(token_id)
        if row is None or not hmac.compare_digest(row["secret_hash"], _digest(secret)):
            raise AuthError("the token is not valid")
        if row["revoked_at"] is not None:
            raise AuthError("the token was revoked")
        if row["expired"]:
            raise AuthError("the token has expired")
        return Caller(token_id, row["role"], frozenset(row["grants"]), row["label"])

    async def _fetch(self, token_ids: dict[str, None]) -> dict[str, asyncpg.Record]:
        """The rows of the tokens that concurrent requests present, in one statement (each
        request is checked by a statement that began after it came: a revocation holds at
        once)."""
        rows = await self._pool.fetch(
            "SELECT *, expires_at <= now() AS expired FROM api_tokens"
            " WHERE token_id = ANY($1::text[])",
            list(token_ids),
        )
        return {r["token_id"]: r for r in rows}


def _info(row: asyncpg.Record) -> TokenInfo:
    return TokenInfo(
        token_id=row["token_id"],
        role=row["role"],
        grants=list(row["grants"]),
        label=row["label"],
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )
