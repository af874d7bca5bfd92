"""The ``consent-ledger`` command: a thin layer over the services and the operators' tools.

The developer's commands (the local stack, ``run``, the benchmark, the reference audience
consumer) are not here: they are ``python -m tools`` (tools/cli.py), which is not shipped.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeAlias, TypeVar

from services.access.tokens import GRANTS, ROLES
from services.config import ROOT, Settings
from services.process import run_service

#: The settings a command reads: the product's, or a tool's that add fields of their own.
S = TypeVar("S", bound=Settings)
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
#: The generated event catalogue.
CATALOGUE = ROOT / "docs" / "events.md"


def add_command(
    parent: SubParsers,
    name: str,
    handler: Callable[[argparse.Namespace, S], int],
    help_text: str,
) -> argparse.ArgumentParser:
    """A subcommand whose ``--help`` repeats its one-line help; ``handler`` runs it."""
    sub = parent.add_parser(name, help=help_text, description=help_text)
    sub.set_defaults(handler=handler)
    return sub


def dispatch(args: argparse.Namespace, settings: Settings, *errors: type[Exception]) -> int:
    """Run the parsed command. ``errors`` are problems a person has to fix: their message is
    printed as is, with exit status 2; Ctrl-C is status 130, as for any command."""
    try:
        code: int = args.handler(args, settings)
    except errors as exc:
        print(f"consent-ledger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


def _serve(name: str, settings: Settings) -> int:
    import uvicorn

    from services.logs import configure

    configure(settings.log_level)
    if name == "intake":
        from services.intake.main import create_app

        host, port = settings.intake_host, settings.intake_port
    else:
        from services.projector.main import create_app

        host, port = settings.projector_host, settings.projector_port

    async def serve() -> None:  # the app is built inside the loop its connections belong to
        config = uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            http="httptools",
            log_config=None,
            access_log=False,
        )
        await uvicorn.Server(config).serve()

    run_service(serve())
    return 0


def cmd_intake(args: argparse.Namespace, settings: Settings) -> int:
    return _serve("intake", settings)


def cmd_projector(args: argparse.Namespace, settings: Settings) -> int:
    return _serve("projector", settings)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from projections.migrations import apply

    applied = asyncio.run(apply(settings.database_url))
    print("applied: " + ", ".join(applied) if applied else "the schema is up to date")
    return 0


def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from services.messaging.topics import ensure_topics

    asyncio.run(ensure_topics(settings))
    print(
        f"topics ready: {settings.ledger_topic}, {settings.intake_topic}, "
        f"{settings.dead_letter_topic}, {settings.feed_topic}"
    )
    return 0


def _instant(value: str) -> datetime:
    """An ISO 8601 instant with a UTC offset (argparse type of ``--now``)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        raise argparse.ArgumentTypeError(f"needs a UTC offset, e.g. {value}Z or {value}+02:00")
    return parsed.astimezone(UTC)


def positive_seconds(value: str) -> float:
    """A positive number of seconds (argparse type of ``--interval``)."""
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return seconds


def cmd_retention_run(args: argparse.Namespace, settings: Settings) -> int:
    from services.logs import configure
    from services.retention.main import run_once

    if args.now is not None and args.now > datetime.now(UTC) and not args.dry_run:
        print("consent-ledger: --now in the future needs --dry-run", file=sys.stderr)
        return 2  # the ledger refuses events that occur in the future
    configure(settings.log_level)
    report = asyncio.run(run_once(settings, args.now, dry_run=args.dry_run))
    print(json.dumps(report.to_json(), indent=2))
    return 0


def cmd_retention_serve(args: argparse.Namespace, settings: Settings) -> int:
    from services.logs import configure
    from services.retention.main import serve

    configure(settings.log_level)
    run_service(serve(settings, args.interval))
    return 0


def whole_number(value: str, least: int = 1) -> int:
    """A whole number of at least ``least`` (argparse type of counts: ``--batch-size``, ...)."""
    try:
        count = int(value.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if count < least:
        raise argparse.ArgumentTypeError(f"must be at least {least}")
    return count


async def _with_pool(settings: Settings, work: Callable[[Any], Awaitable[int]]) -> int:
    from projections.db import create_pool

    pool = await create_pool(settings.database_url, max_size=2)
    try:
        return await work(pool)
    finally:
        await pool.close()


def cmd_tokens_create(args: argparse.Namespace, settings: Settings) -> int:
    from pydantic import ValidationError

    from services.access.tokens import TokenStore
    from services.errors import describe

    expires = (
        datetime.now(UTC) + timedelta(days=args.expires_in_days) if args.expires_in_days else None
    )

    async def create(pool: Any) -> int:
        try:
            token, info = await TokenStore(pool).create(
                args.role, args.label, grants=frozenset(args.grant), expires_at=expires
            )
        except ValidationError as exc:  # the label would name a person in clear: none stored
            reasons = "; ".join(e["reason"] for e in describe(exc.errors()))
            print(f"consent-ledger: --label: {reasons}", file=sys.stderr)
            return 2
        shown = {"token": token, "token_id": info.token_id, "role": info.role}
        print(json.dumps({**shown, "grants": info.grants, "expires_at": _iso(info.expires_at)}))
        print("keep the token now: it is shown once and not stored", file=sys.stderr)
        return 0

    return asyncio.run(_with_pool(settings, create))


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def cmd_tokens_list(args: argparse.Namespace, settings: Settings) -> int:
    from services.access.tokens import TokenStore

    async def show(pool: Any) -> int:
        now = datetime.now(UTC)
        for t in await TokenStore(pool).list():
            expired = t.expires_at is not None and t.expires_at <= now
            state = "revoked" if t.revoked_at else "expired" if expired else "active"
            print(f"{t.token_id}  {t.role:<9}  {state:<7}  expires {_iso(t.expires_at) or 'never'}"
                  f"  grants [{', '.join(t.grants)}]  {t.label}")  # fmt: skip
        return 0

    return asyncio.run(_with_pool(settings, show))


def cmd_tokens_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from services.access.tokens import TokenStore

    async def revoke(pool: Any) -> int:
        if await TokenStore(pool).revoke(args.token_id):
            print(f"revoked {args.token_id}")
            return 0
        print(f"consent-ledger: no unrevoked token {args.token_id!r}", file=sys.stderr)
        return 1

    return asyncio.run(_with_pool(settings, revoke))


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from events.sealing import MasterKey
    from services.privacy.keystore import rotate_master
    from services.privacy.secrets import load_secrets

    old = load_secrets(settings).master
    new = MasterKey.from_text(Path(args.new_key_file).read_text())

    async def rotate(pool: Any) -> int:
        count = await rotate_master(pool, old, new)
        print(f"rewrapped {count} data keys from master key {old.key_id} to {new.key_id}; "
              "now configure the new key and restart every service")  # fmt: skip
        return 0

    return asyncio.run(_with_pool(settings, rotate))


def cmd_keys_init(args: argparse.Namespace, settings: Settings) -> int:
    from services.audit.signing import signing_key
    from services.privacy.secrets import ensure_local_secrets, local_secrets_dir

    ensure_local_secrets(settings)
    signing_key(settings)
    print(f"secrets ready in {local_secrets_dir(settings)} and {settings.stack_dir}")
    return 0


def cmd_keys_generate(args: argparse.Namespace, settings: Settings) -> int:
    from events.sealing import MasterKey

    path = Path(args.file)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        print(f"consent-ledger: {path} exists; a key file is never overwritten", file=sys.stderr)
        return 1
    with os.fdopen(fd, "w") as out:
        out.write(MasterKey.generate_text() + "\n")
    print(f"wrote a new master key to {path} (mode 0600)")
    return 0


def cmd_schemas_export(args: argparse.Namespace, settings: Settings) -> int:
    from events.catalogue_doc import catalogue_markdown
    from events.codec import export_schemas

    for path in export_schemas(Path(args.directory)):
        print(path)
    CATALOGUE.write_text(catalogue_markdown())
    print(CATALOGUE)
    return 0


# The eligibility feed for mail tools (docs/mail-tools.md).
FEED_SCHEMAS = ROOT / "docs" / "feed-schemas"


def cmd_feed(args: argparse.Namespace, settings: Settings) -> int:
    if args.export_schemas is not None:
        from projections.feed import export_feed_schemas

        for path in export_feed_schemas(Path(args.export_schemas)):
            print(path)
        return 0
    from services.feed.main import serve
    from services.logs import configure

    configure(settings.log_level)
    run_service(serve(settings))
    return 0


def add_feed_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
) -> None:
    feed = commands.add_parser(
        "feed",
        help="publish the eligibility feed (outbox -> Kafka topic, webhooks)",
        description="Drain the feed outbox to the compacted feed topic and deliver webhooks, "
        "until SIGINT/SIGTERM.",
    )
    feed.set_defaults(handler=cmd_feed)
    feed.add_argument(
        "--export-schemas",
        nargs="?",
        const=str(FEED_SCHEMAS),
        metavar="DIR",
        help=f"write the feed's JSON Schemas (default {FEED_SCHEMAS.relative_to(ROOT)}) and exit",
    )


# --- replay and point-in-time answers (docs/replay.md) ---------------------------------------


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from services.replay.reader import ReplayError
    from services.replay.report import ReplayReport
    from services.replay.run import StderrProgress, replay
    from services.replay.swap import SwapRefusedError, swap

    async def run() -> tuple[ReplayReport, str | None]:
        report = await replay(
            settings,
            args.schema,
            batch_size=args.batch_size,
            keep=args.keep or args.swap,
            differences=args.differences,
            processes=args.processes or settings.replay_processes,
            progress=StderrProgress(),
        )
        if not args.swap:
            return report, None
        try:
            return await swap(settings.database_url, report), None
        except SwapRefusedError as exc:
            return report, f"{exc} The replay is kept in schema {report.replay_schema}."

    try:
        report, refused = run_service(run())
    except ReplayError as exc:
        print(f"consent-ledger: {exc}", file=sys.stderr)
        return 2
    print(report.model_dump_json(indent=2) if args.json else report.text())
    if refused:
        print(f"consent-ledger: {refused}", file=sys.stderr)
        return 2
    return 0 if report.equal or report.swapped else 1


def cmd_as_of_subject(args: argparse.Namespace, settings: Settings) -> int:
    from projections.db import create_pool
    from services.point_in_time import subject_as_of
    from services.projector.as_of import subject_as_of_out

    async def run() -> str | None:
        async with create_pool(settings.database_url, max_size=1) as pool:
            state = await subject_as_of(pool, args.subject_id, args.at, args.basis)
        return (
            subject_as_of_out(state, args.at, args.basis).model_dump_json(indent=2)
            if state
            else None
        )

    answer = asyncio.run(run())
    if answer is None:
        print(
            f"consent-ledger: no events about {args.subject_id!r} up to {args.at.isoformat()}",
            file=sys.stderr,
        )
        return 1
    print(answer)
    return 0


def cmd_as_of_eligible(args: argparse.Namespace, settings: Settings) -> int:
    from projections.db import create_pool
    from services.point_in_time import eligible_as_of
    from services.projector.as_of import render

    async def run() -> None:
        async with create_pool(settings.database_url, max_size=1) as pool:
            rows = eligible_as_of(pool, args.purpose, args.at, args.basis)
            async for chunk in render(rows, args.format):
                sys.stdout.buffer.write(chunk)
        sys.stdout.buffer.flush()

    asyncio.run(run())
    return 0


def _add_replay_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    add: Callable[..., argparse.ArgumentParser],
) -> None:
    replay = add(
        commands,
        "replay",
        cmd_replay,
        "rebuild every projection from offset 0 of the ledger, up to the live projector's "
        "offsets, into a schema of its own; compare it with the live tables table by table "
        "(exit 1 when they differ)",
    )
    replay.add_argument("--schema", help="the schema to rebuild in (default: replay_<UTC time>)")
    replay.add_argument(
        "--batch-size",
        type=whole_number,
        default=10_000,
        help="records per transaction (default 10,000)",
    )
    replay.add_argument(
        "--processes",
        type=whole_number,
        help="rebuild in this many processes, each with its own share of the partitions "
        "(default: CONSENT_LEDGER_REPLAY_PROCESSES, else the CPUs usable)",
    )
    replay.add_argument(
        "--differences",
        type=whole_number,
        default=20,
        help="differing rows named per table (default 20)",
    )
    replay.add_argument(
        "--keep", action="store_true", help="keep the replay schema even when it equals live"
    )
    replay.add_argument(
        "--swap",
        action="store_true",
        help="then put the rebuilt tables in place of the live ones, in one transaction; refused "
        "if the projector moved on meanwhile (stop the projector first)",
    )
    replay.add_argument("--json", action="store_true", help="print the report as JSON")
    as_of = commands.add_parser(
        "as-of",
        help="point-in-time answers from the ledger mirror",
        description="A person's state, or who was eligible for a purpose, at an instant.",
    )
    as_of_sub = as_of.add_subparsers(dest="as_of_command", required=True, metavar="WHAT")
    subject = add(as_of_sub, "subject", cmd_as_of_subject, "a subject's state at an instant (JSON)")
    subject.add_argument("subject_id")
    eligible = add(
        as_of_sub, "eligible", cmd_as_of_eligible, "everyone eligible for a purpose at an instant"
    )
    eligible.add_argument("purpose")
    eligible.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    for sub in (subject, eligible):
        sub.add_argument(
            "--at", type=_instant, required=True, help="ISO 8601 time with a UTC offset"
        )
        sub.add_argument(
            "--basis",
            choices=["occurred", "recorded"],
            default="occurred",
            help="occurred (default): what was true then; recorded: what the ledger knew then",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-ledger",
        description="Event-sourced consent and data-subject-rights ledger. Settings come from "
        "CONSENT_LEDGER_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add = add_command
    add(commands, "intake", cmd_intake, "run the intake HTTP service (and the intake topic)")
    add(commands, "projector", cmd_projector, "run the projector and its read API")
    add(commands, "migrate", cmd_migrate, "apply the SQL migrations to the database")
    topics = commands.add_parser("topics", help="Kafka topics", description="Kafka topics.")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    add(
        topics_sub,
        "create",
        cmd_topics_create,
        "create the ledger, intake, dead-letter and feed topics",
    )
    retention = commands.add_parser(
        "retention",
        help="the retention job",
        description="Append consent.expired and subject.erased events where the register's "
        "retention rules call for them; safe to run twice or concurrently.",
    )
    retention_sub = retention.add_subparsers(
        dest="retention_command", required=True, metavar="ACTION"
    )
    retention_run = add(
        retention_sub, "run", cmd_retention_run, "run the job once; print a JSON report"
    )
    retention_run.add_argument(
        "--dry-run", action="store_true", help="report what would be appended; append nothing"
    )
    retention_run.add_argument(
        "--now", type=_instant, help="apply the rules as of this ISO 8601 time (default: now)"
    )
    retention_serve = add(
        retention_sub, "serve", cmd_retention_serve, "run the job on a timer until SIGINT/SIGTERM"
    )
    retention_serve.add_argument(
        "--interval",
        type=positive_seconds,
        default=300.0,
        help="seconds between runs (default: 300)",
    )
    tokens = commands.add_parser(
        "tokens", help="API tokens", description="Issue, list and revoke API tokens."
    )
    tokens_sub = tokens.add_subparsers(dest="tokens_command", required=True, metavar="ACTION")
    create = add(tokens_sub, "create", cmd_tokens_create, "issue a token; it is printed once")
    create.add_argument("--role", required=True, choices=ROLES)
    create.add_argument("--label", required=True, help="who or what holds it")
    create.add_argument(
        "--grant", action="append", default=[], choices=GRANTS, help="extra right (repeatable)"
    )
    create.add_argument("--expires-in-days", type=whole_number, help="default: never expires")
    add(tokens_sub, "list", cmd_tokens_list, "every token (never the secrets)")
    revoke = add(tokens_sub, "revoke", cmd_tokens_revoke, "revoke a token at once")
    revoke.add_argument("token_id")
    keys = commands.add_parser(
        "keys", help="the master key", description="Generate and rotate the master key."
    )
    keys_sub = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    add(
        keys_sub,
        "init",
        cmd_keys_init,
        "create the master key, identity secret and signing key in the stack dir unless they "
        "exist (for deployments without configured secrets, e.g. docker-compose)",
    )
    generate = add(keys_sub, "generate", cmd_keys_generate, "write a new master key to a file")
    generate.add_argument("file")
    rotate = add(
        keys_sub,
        "rotate",
        cmd_keys_rotate,
        "rewrap every data key from the configured master key to a new one (the log is not "
        "touched); then configure the new key and restart the services",
    )
    rotate.add_argument("--new-key-file", required=True)

    _add_replay_commands(commands, add)
    schemas = commands.add_parser(
        "schemas", help="event JSON Schemas", description="The JSON Schemas of every event type."
    )
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = add(
        schemas_sub,
        "export",
        cmd_schemas_export,
        "write every event's JSON Schema, and the event catalogue docs/events.md",
    )
    export.add_argument("directory", nargs="?", default=str(ROOT / "events" / "schemas"))
    add_feed_commands(commands)

    from services.audit.commands import add_commands as add_audit_commands

    add_audit_commands(commands, add)  # verify, checkpoint, public-key, receipt verify
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from services.messaging.topics import TopicsError

    return dispatch(build_parser().parse_args(argv), Settings(), TopicsError)


if __name__ == "__main__":
    sys.exit(main())
