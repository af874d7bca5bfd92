"""The auditors' subcommands: ``verify``, ``checkpoint``, ``receipt verify``, ``public-key``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeAlias

from aiokafka.errors import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError

from services.audit.models import CheckpointFile, problems
from services.audit.signing import (
    SignatureError,
    SigningKeyError,
    key_id,
    public_pem,
    read_public_key,
    signing_key,
)
from services.config import Settings

Handler = Callable[[argparse.Namespace, Settings], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
Add: TypeAlias = Callable[[SubParsers, str, Handler, str], argparse.ArgumentParser]


def _fail(message: str) -> int:
    print(f"consent-ledger: {message}", file=sys.stderr)
    return 2


def _public_key(args: argparse.Namespace, settings: Settings) -> Ed25519PublicKey:
    """``--public-key FILE``, or else the public half of the configured signing key."""
    if args.public_key:
        return read_public_key(Path(args.public_key))
    return signing_key(settings, create=False).public_key()


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    from services.audit.verify import render, verify_ledger

    checkpoints, key = None, None
    try:
        if args.checkpoint:
            checkpoints = CheckpointFile.model_validate_json(Path(args.checkpoint).read_bytes())
            key = _public_key(args, settings)
        report = asyncio.run(verify_ledger(settings, checkpoints, key))
    except ValidationError as exc:
        return _fail(f"verify: checkpoint file {args.checkpoint}: {problems(exc)}")
    except (OSError, SigningKeyError, KafkaError, LookupError) as exc:
        return _fail(f"verify: {exc}")
    print(report.model_dump_json(indent=2) if args.json else render(report))
    return 0 if report.ok else 1


def cmd_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    from projections.db import create_pool
    from services.audit.checkpoints import checkpoint, stored_checkpoints

    async def run() -> CheckpointFile:
        pool = await create_pool(settings.database_url, max_size=1)
        try:
            if args.stored:
                return await stored_checkpoints(pool, settings.ledger_topic)
            return await checkpoint(pool, settings.ledger_topic, signing_key(settings))
        finally:
            await pool.close()

    try:
        signed = asyncio.run(run())
    except (OSError, SigningKeyError) as exc:
        return _fail(f"checkpoint: {exc}")
    print(signed.model_dump_json(indent=2))
    return 0


def cmd_receipt_verify(args: argparse.Namespace, settings: Settings) -> int:
    from services.audit.receipts import ReceiptError, verify_receipt

    try:
        key = _public_key(args, settings)
        data = Path(args.file).read_bytes()
    except (OSError, SigningKeyError) as exc:
        return _fail(f"receipt verify: {exc}")
    try:
        receipt = verify_receipt(data, key)
    except (ReceiptError, SignatureError) as exc:
        print(f"INVALID {args.file}: {exc}")
        return 1
    print(
        f"OK {receipt.receipt_id}: {receipt.action} {receipt.purposes[0].purpose_id} by "
        f"subject {receipt.subject_id} at {receipt.occurred_at.isoformat()}, event "
        f"{receipt.event.event_id} (partition {receipt.event.partition}, offset "
        f"{receipt.event.offset}); signed by {key_id(key)}"
    )
    return 0


def cmd_public_key(args: argparse.Namespace, settings: Settings) -> int:
    try:
        key = signing_key(settings, create=False)
    except SigningKeyError as exc:
        return _fail(str(exc))
    sys.stdout.write(public_pem(key.public_key()).decode())
    return 0


def add_commands(commands: SubParsers, add: Add) -> None:
    """Register the auditors' subcommands on the ``consent-ledger`` parser."""
    key_help = "the signer's public key (PEM); default: the configured signing key's"
    verify = add(
        commands,
        "verify",
        cmd_verify,
        "recompute the hash chain from Kafka and from the mirror and report every changed, "
        "missing or inserted event; exit 1 on any finding",
    )
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--checkpoint", metavar="FILE", help="also check these signed checkpoints")
    verify.add_argument("--public-key", metavar="FILE", help=key_help)
    checkpoint = add(
        commands,
        "checkpoint",
        cmd_checkpoint,
        "sign every partition's chain head now; print the checkpoints as JSON to keep outside",
    )
    checkpoint.add_argument(
        "--stored",
        action="store_true",
        help="sign nothing; print every checkpoint stored so far (the projector's too)",
    )
    add(commands, "public-key", cmd_public_key, "print the signing key's public key (PEM)")
    receipt = commands.add_parser(
        "receipt", help="consent receipts", description="Consent receipts."
    )
    receipt_sub = receipt.add_subparsers(dest="receipt_command", required=True, metavar="ACTION")
    check = add(
        receipt_sub,
        "verify",
        cmd_receipt_verify,
        "verify a saved receipt offline (no network, no database)",
    )
    check.add_argument("file", metavar="FILE")
    check.add_argument("--public-key", metavar="FILE", help=key_help)
