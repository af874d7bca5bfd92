"""Ed25519 signatures over canonical JSON, as detached JWS with an unencoded payload.

A signature is ``<protected header>..<signature>`` (RFC 7515 Appendix F, detached), the header
``{"alg":"EdDSA","b64":false,"crit":["b64"],"kid":...}`` (RFC 7797: the payload is signed as
is), and the payload the document itself without its ``signature`` field, serialised with
sorted keys and no whitespace (orjson, as the ledger encodes events). So a verifier needs only
the JSON document, the public key and any JWS library or a few lines of code.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import threading
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from services.config import Settings

HEADER_BASE = {"alg": "EdDSA", "b64": False, "crit": ["b64"]}
#: Where the local stack keeps the key it generated when none is configured.
LOCAL_KEY_NAME = "signing-key.pem"


class SigningKeyError(ValueError):
    """The signing or public key is missing or unreadable."""


class SignatureError(ValueError):
    """A signature does not verify; the message says why."""


def local_signing_key(stack_dir: Path) -> Ed25519PrivateKey:
    """The local stack's key: read it, or generate it (mode 0600) on first use. The key is
    written whole to a private file, then linked into place, so a concurrent starter either
    finds the complete file or wins the race itself."""
    path = stack_dir / LOCAL_KEY_NAME
    if path.exists():
        return read_signing_key(path)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{LOCAL_KEY_NAME}.{os.getpid()}.{threading.get_ident()}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    try:
        os.link(draft, path)
    except FileExistsError:
        return read_signing_key(path)  # another starter linked its key first
    finally:
        draft.unlink()
    return key


def read_signing_key(path: Path) -> Ed25519PrivateKey:
    """An Ed25519 private key from a PEM (PKCS#8) file."""
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise SigningKeyError(f"signing key {path}: cannot read: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"signing key {path}: not an Ed25519 key")
    return key


def signing_key(settings: Settings, *, create: bool = True) -> Ed25519PrivateKey:
    """The configured signing key, or else the local stack's (generated unless ``create`` is
    false, for readers that must not invent a key)."""
    if settings.signing_key_file is not None:
        return read_signing_key(settings.signing_key_file)
    if not create and not (settings.stack_dir / LOCAL_KEY_NAME).exists():
        raise SigningKeyError(
            "no signing key: set CONSENT_LEDGER_SIGNING_KEY_FILE or pass --public-key"
        )
    return local_signing_key(settings.stack_dir)


def read_public_key(path: Path) -> Ed25519PublicKey:
    """An Ed25519 public key from a PEM (SubjectPublicKeyInfo) file."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SigningKeyError(f"public key {path}: cannot read: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"public key {path}: not an Ed25519 key")
    return key


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: Ed25519PublicKey) -> str:
    """A short, stable name of a public key: the start of the SHA-256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict base64url: only the one canonical spelling of the bytes is accepted (the last
    character's unused bits would otherwise let a changed signature still verify)."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64url")
    return data


def _payload(document: dict[str, Any]) -> bytes:
    return orjson.dumps(
        {k: v for k, v in document.items() if k != "signature"}, option=orjson.OPT_SORT_KEYS
    )


def sign(key: Ed25519PrivateKey, document: dict[str, Any]) -> str:
    """The detached signature of ``document`` (its ``signature`` field, if any, left out)."""
    header = {**HEADER_BASE, "kid": key_id(key.public_key())}
    protected = _b64(orjson.dumps(header, option=orjson.OPT_SORT_KEYS))
    signature = key.sign(protected.encode() + b"." + _payload(document))
    return f"{protected}..{_b64(signature)}"


def verify(key: Ed25519PublicKey, document: dict[str, Any], signature: str) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is ``key``'s over ``document``."""
    protected, dot, rest = signature.partition("..")
    if not dot or "." in rest:
        raise SignatureError("signature: not a detached JWS (<header>..<signature>)")
    try:
        header = orjson.loads(_unb64(protected))
        raw_signature = _unb64(rest)
    except (ValueError, binascii.Error) as exc:
        raise SignatureError(f"signature: not base64url JSON: {exc}") from exc
    if not isinstance(header, dict) or any(header.get(k) != v for k, v in HEADER_BASE.items()):
        raise SignatureError(f"signature: header must be {HEADER_BASE} with a kid")
    expected = key_id(key)
    if header.get("kid") != expected:
        raise SignatureError(f"signature: made with key {header.get('kid')}, not {expected}")
    try:
        key.verify(raw_signature, protected.encode() + b"." + _payload(document))
    except InvalidSignature:
        raise SignatureError("signature: does not match the document (altered?)") from None
