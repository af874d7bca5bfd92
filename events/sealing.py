"""Crypto-shredding of the personal section: per-subject data keys, sealed under a master key.

Every event's :class:`~events.envelope.PersonalData` is encrypted (AES-256-GCM) under a data key
that belongs to the subject; the event id and subject id are the associated data, so a sealed
section moved to another event or person does not open. Data keys are stored wrapped (AES-256-GCM
again) by a master key that configuration supplies. Destroying a subject's data keys (erasure)
leaves every event readable except its personal section: crypto-shredding.

Pure functions only: where keys are stored is the key store's business.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Collection
from dataclasses import dataclass
from ipaddress import ip_address
from typing import Any, Literal, TypeVar
from uuid import UUID

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from events.envelope import Envelope, PersonalData, Sealed

KEY_BYTES = 32
NONCE_BYTES = 12


class TamperedError(ValueError):
    """A ciphertext, or what it is bound to, was changed: refused, never decoded to garbage."""


@dataclass(frozen=True, slots=True)
class DataKey:
    """One generation of a subject's data key, unwrapped (only ever held in memory)."""

    subject_id: str
    generation: int
    secret: bytes = b""

    @classmethod
    def generate(cls, subject_id: str, generation: int) -> DataKey:
        return cls(subject_id, generation, AESGCM.generate_key(bit_length=256))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def event_aad(event_id: UUID, subject_id: str) -> bytes:
    """What a sealed section is bound to: it opens only in its own event about its own person."""
    return f"event:{event_id}|subject:{subject_id}".encode()


def seal(personal: PersonalData, key: DataKey, event_id: UUID) -> Sealed:
    plain = orjson.dumps(personal.model_dump(mode="json", exclude_none=True))
    nonce = os.urandom(NONCE_BYTES)
    cipher = AESGCM(key.secret).encrypt(nonce, plain, event_aad(event_id, key.subject_id))
    # Built from our own key generation and base64url output: valid by construction.
    return Sealed.model_construct(
        key_generation=key.generation, nonce=_b64(nonce), ciphertext=_b64(cipher)
    )


def unseal(
    sealed: Sealed, key: DataKey, event_id: UUID, keep: Collection[str] | None = None
) -> PersonalData:
    """The personal section (only the fields in ``keep``, if given); raises
    :class:`TamperedError` if anything bound to it changed."""
    try:
        plain = AESGCM(key.secret).decrypt(
            _unb64(sealed.nonce), _unb64(sealed.ciphertext), event_aad(event_id, key.subject_id)
        )
    except (InvalidTag, ValueError) as exc:
        raise TamperedError(f"personal data of event {event_id} does not open: changed") from exc
    data = orjson.loads(plain)
    return _authenticated(data if keep is None else {k: data[k] for k in keep if k in data})


def _authenticated(data: dict[str, Any]) -> PersonalData:
    """A personal section from plaintext that authenticated: it was sealed by :func:`seal`,
    from a validated :class:`PersonalData`, so it is rebuilt without validating it again
    (re-checking the address was a tenth of the projector's CPU, see docs/performance.md)."""
    if (ip := data.get("ip_address")) is not None:
        data["ip_address"] = ip_address(ip)
    return PersonalData.model_construct(**data)


class MasterKey:
    """Wraps and unwraps data keys; its id tells which master a wrapped key needs."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) != KEY_BYTES:
            raise ValueError(f"a master key is {KEY_BYTES} bytes, not {len(secret)}")
        self._aead = AESGCM(secret)
        self.key_id = hashlib.sha256(b"consent-ledger master key id|" + secret).hexdigest()[:16]

    @classmethod
    def from_text(cls, text: str) -> MasterKey:
        """A master key written as base64 (standard or url-safe), as in a key file."""
        try:
            return cls(_unb64(text.strip().replace("+", "-").replace("/", "_").rstrip("=")))
        except (ValueError, TypeError) as exc:
            raise ValueError(f"the master key is not base64 of {KEY_BYTES} bytes: {exc}") from exc

    @staticmethod
    def generate_text() -> str:
        return _b64(os.urandom(KEY_BYTES))

    def _aad(self, subject_id: str, generation: int) -> bytes:
        return f"master:{self.key_id}|subject:{subject_id}|generation:{generation}".encode()

    def wrap(self, key: DataKey) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        aad = self._aad(key.subject_id, key.generation)
        return nonce + self._aead.encrypt(nonce, key.secret, aad)

    def unwrap(self, subject_id: str, generation: int, wrapped: bytes) -> DataKey:
        aad = self._aad(subject_id, generation)
        try:
            secret = self._aead.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag as exc:
            raise TamperedError(
                f"data key {subject_id}/{generation} does not open with master key {self.key_id}"
            ) from exc
        return DataKey(subject_id, generation, secret)


E = TypeVar("E", bound=Envelope)
#: How a reader sees an event's personal section (``tampered``: changed, so refused).
PersonalState = Literal["open", "none", "withheld", "shredded", "tampered"]


#: An empty personal section; models are frozen, so one instance serves every event (building
#: and validating a fresh one twice per event was a third of sealing's cost).
NO_PERSONAL = PersonalData()


def seal_event(event: E, key: DataKey) -> E:
    """The event as the log stores it: the personal section sealed, ``personal`` left empty."""
    if event.personal == NO_PERSONAL:
        return event
    sealed = seal(event.personal, key, event.event_id)
    return event.model_copy(update={"personal": NO_PERSONAL, "sealed": sealed})


def open_event(event: E, key: DataKey | None, keep: Collection[str] | None = None) -> E:
    """The event with its personal section opened (only the fields in ``keep``, if given: a
    reader holds no more personal data than it uses); without a key (shredded) it stays
    empty."""
    if event.sealed is None or key is None:
        return event
    personal = unseal(event.sealed, key, event.event_id, keep)
    return event.model_copy(update={"personal": personal})


def reveal(payload: dict[str, Any], key: DataKey | None, *, allowed: bool) -> dict[str, Any]:
    """An event from the log as a person reads it: the personal section opened, or
    ``personal_state`` saying why it is not there (none, withheld from this reader, shredded)."""
    out = {k: v for k, v in payload.items() if k not in ("sealed", "personal")}
    sealed = payload.get("sealed")
    legacy = payload.get("personal") or {}  # version 1: in clear
    state: PersonalState
    if sealed is None and not legacy:
        state = "none"
    elif not allowed:
        state = "withheld"
    elif sealed is None:
        state, out["personal"] = "open", legacy
    elif key is None:
        state = "shredded"
    else:
        opened = unseal(Sealed.model_validate(sealed), key, UUID(payload["event_id"]))
        state, out["personal"] = "open", opened.model_dump(mode="json", exclude_none=True)
    out["personal_state"] = state
    return out
