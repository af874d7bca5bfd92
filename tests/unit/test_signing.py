"""Signatures of checkpoints and receipts: detached JWS (EdDSA) over canonical JSON."""

from __future__ import annotations

import base64
import stat
import string
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from services.audit.signing import (
    SignatureError,
    SigningKeyError,
    key_id,
    local_signing_key,
    public_pem,
    read_public_key,
    read_signing_key,
    sign,
    verify,
)

KEY = Ed25519PrivateKey.generate()
#: JSON text: a lone surrogate is not text, and no JSON encoder writes it.
TEXT = st.text(st.characters(exclude_categories=["Cs"]))
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=20,
)


@given(document=st.dictionaries(TEXT, JSON, max_size=6))
def test_a_signature_covers_the_document_and_not_its_key_order(document: dict[str, Any]) -> None:
    signature = sign(KEY, document)
    reordered = dict(reversed(list(document.items())))
    verify(KEY.public_key(), {**reordered, "signature": signature}, signature)
    with pytest.raises(SignatureError, match="does not match"):
        verify(KEY.public_key(), {**document, "extra": 1}, signature)


def test_the_header_names_the_algorithm_and_the_key() -> None:
    protected, _, _ = sign(KEY, {"a": 1}).partition("..")
    header = orjson.loads(base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4)))
    assert header == {
        "alg": "EdDSA",
        "b64": False,
        "crit": ["b64"],
        "kid": key_id(KEY.public_key()),
    }


def test_another_key_or_a_mangled_signature_is_refused(tmp_path: Path) -> None:
    signature = sign(KEY, {"a": 1})
    other = local_signing_key(tmp_path).public_key()
    with pytest.raises(SignatureError, match="made with key"):
        verify(other, {"a": 1}, signature)
    # The last character of 64 bytes in base64url carries 4 unused bits: another spelling of
    # the same signature is still a changed document.
    alphabet = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
    respelled = signature[:-1] + alphabet[alphabet.index(signature[-1]) ^ 1]
    assert base64.urlsafe_b64decode(respelled.split("..")[1] + "==") == base64.urlsafe_b64decode(
        signature.split("..")[1] + "=="
    )
    for bad in ("", "abc", signature.replace("..", "."), signature + "x", "e30..AAAA", respelled):
        with pytest.raises(SignatureError, match=r"^signature: "):
            verify(KEY.public_key(), {"a": 1}, bad)


def test_the_local_key_is_made_once_private_and_shared(tmp_path: Path) -> None:
    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda _: local_signing_key(tmp_path), range(8)))
    raw = {
        k.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        for k in keys
    }
    assert len(raw) == 1
    path = tmp_path / "signing-key.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert key_id(read_signing_key(path).public_key()) == key_id(keys[0].public_key())


def test_unreadable_keys_are_named(tmp_path: Path) -> None:
    public = tmp_path / "public.pem"
    public.write_bytes(public_pem(KEY.public_key()))
    assert key_id(read_public_key(public)) == key_id(KEY.public_key())
    with pytest.raises(SigningKeyError, match=r"public key .*missing\.pem: cannot read"):
        read_public_key(tmp_path / "missing.pem")
    with pytest.raises(SigningKeyError, match=r"signing key .*public\.pem: cannot read"):
        read_signing_key(public)
