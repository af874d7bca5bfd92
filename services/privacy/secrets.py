"""The secrets every process needs: the master key and the identity index's HMAC secret.

Production supplies both through configuration (a file, or the value in an environment
variable). The local stack generates its own once, into ``<stack_dir>/secrets`` (mode 0600), so
that ``make run`` and the tests need no setup; they are never logged.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from events.sealing import MasterKey
from services.config import Settings

MASTER_FILE = "master.key"
IDENTITY_FILE = "identity.key"


class SecretsError(RuntimeError):
    """A secret is missing or malformed; the message names the setting."""


@dataclass(frozen=True, slots=True)
class Secrets:
    master: MasterKey
    identity: bytes


def local_secrets_dir(settings: Settings) -> Path:
    return settings.stack_dir / "secrets"


def ensure_local_secrets(settings: Settings) -> None:
    """Generate the local stack's secrets unless they exist (or configuration gives them)."""
    folder = local_secrets_dir(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in (MASTER_FILE, IDENTITY_FILE):
        path = folder / name
        if not path.exists():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(MasterKey.generate_text() + "\n")


def _read(value: SecretStr | None, file: Path | None, default: Path, setting: str) -> str:
    if value is not None:
        return value.get_secret_value()
    path = file or default
    try:
        return path.read_text().strip()
    except OSError as exc:
        raise SecretsError(
            f"{setting}: cannot read {path} ({exc.strerror}); set CONSENT_LEDGER_{setting.upper()}"
            f"_FILE or CONSENT_LEDGER_{setting.upper()}, or start the local stack"
        ) from exc


def load_secrets(settings: Settings) -> Secrets:
    folder = local_secrets_dir(settings)
    master = _read(
        settings.master_key, settings.master_key_file, folder / MASTER_FILE, "master_key"
    )
    identity = _read(
        settings.identity_secret,
        settings.identity_secret_file,
        folder / IDENTITY_FILE,
        "identity_secret",
    )
    try:
        key = MasterKey.from_text(master)
    except ValueError as exc:
        raise SecretsError(f"master_key: {exc}") from exc
    try:
        text = identity.replace("+", "-").replace("/", "_").rstrip("=")
        secret = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise SecretsError(f"identity_secret: not base64: {exc}") from exc
    if len(secret) < 16:
        raise SecretsError("identity_secret: must be at least 16 bytes")
    return Secrets(master=key, identity=secret)
