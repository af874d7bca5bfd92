"""The ``consent-ledger`` command: a thin layer over the stack, the services and the tools."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from services.config import ROOT, Settings

Handler = Callable[[argparse.Namespace, Settings], int]


def _database_url_given(args: argparse.Namespace, settings: Settings) -> bool:
    """Whether to use an existing PostgreSQL rather than start the stack's own."""
    if getattr(args, "database_url", None):
        return True
    if settings.stack_postgres is not None:
        return not settings.stack_postgres
    return "CONSENT_LEDGER_DATABASE_URL" in os.environ


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "database_url", None):
        settings = settings.model_copy(update={"database_url": args.database_url})
    return settings


def cmd_stack_up(args: argparse.Namespace, settings: Settings) -> int:
    from services import stack

    given = _database_url_given(args, settings)
    if args.detach:
        info = asyncio.run(stack.up(settings, database_url_given=given))
        print(json.dumps(info.to_json(), indent=2))
    else:
        asyncio.run(stack.run_foreground(settings, database_url_given=given))
    return 0


def cmd_stack_down(args: argparse.Namespace, settings: Settings) -> int:
    from services import stack

    stack.down(settings)
    stack.print_progress("stopped")
    return 0


def cmd_stack_status(args: argparse.Namespace, settings: Settings) -> int:
    from services import stack

    info = stack.status(settings)
    if args.json:
        print(json.dumps(info.to_json() if info else {"running": False}, indent=2))
    elif info is None:
        print("the stack is not running")
    else:
        print(f"Kafka       {info.kafka_bootstrap}\nPostgreSQL  {info.database_url}")
        for name, url in sorted(info.services.items()):
            print(f"{name:<11} {url}")
    return 0 if info else 1


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from services.runner import run

    asyncio.run(run(settings, _database_url_given(args, settings)))
    return 0


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
            create_app(settings), host=host, port=port, log_config=None, access_log=False
        )
        await uvicorn.Server(config).serve()

    asyncio.run(serve())
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
    from services.stack import ensure_topics

    asyncio.run(ensure_topics(settings))
    print(
        f"topics ready: {settings.ledger_topic}, {settings.intake_topic}, "
        f"{settings.dead_letter_topic}"
    )
    return 0


def cmd_schemas_export(args: argparse.Namespace, settings: Settings) -> int:
    from events.codec import export_schemas

    for path in export_schemas(Path(args.directory)):
        print(path)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-ledger",
        description="Event-sourced consent and data-subject-rights ledger. Settings come from "
        "CONSENT_LEDGER_* environment variables (see README).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(
        parent: argparse._SubParsersAction[argparse.ArgumentParser],
        name: str,
        handler: Handler,
        help_text: str,
    ) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    stack_cmd = commands.add_parser(
        "stack",
        help="the local Kafka + PostgreSQL stack",
        description="Run Kafka and PostgreSQL locally, without Docker.",
    )
    stack_sub = stack_cmd.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = add(
        stack_sub,
        "up",
        cmd_stack_up,
        "start Kafka and PostgreSQL (fetched and created on first use), create the topics "
        "and apply migrations; Ctrl-C stops everything",
    )
    up.add_argument("--detach", action="store_true", help="return once ready; stop with `down`")
    up.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    add(stack_sub, "down", cmd_stack_down, "stop everything the stack started")
    st = add(stack_sub, "status", cmd_stack_status, "where Kafka, PostgreSQL and services are")
    st.add_argument("--json", action="store_true", help="print JSON")

    run = add(
        commands,
        "run",
        cmd_run,
        "start the stack and every service in the foreground; Ctrl-C stops all",
    )
    run.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    add(commands, "intake", cmd_intake, "run the intake HTTP service (and the intake topic)")
    add(commands, "projector", cmd_projector, "run the projector and its read API")
    add(commands, "migrate", cmd_migrate, "apply the SQL migrations to the database")
    topics = commands.add_parser("topics", help="Kafka topics", description="Kafka topics.")
    topics_sub = topics.add_subparsers(dest="topics_command", required=True, metavar="ACTION")
    add(topics_sub, "create", cmd_topics_create, "create the ledger, intake and dead-letter topics")
    schemas = commands.add_parser(
        "schemas", help="event JSON Schemas", description="The JSON Schemas of every event type."
    )
    schemas_sub = schemas.add_subparsers(dest="schemas_command", required=True, metavar="ACTION")
    export = add(schemas_sub, "export", cmd_schemas_export, "write every event's JSON Schema")
    export.add_argument("directory", nargs="?", default=str(ROOT / "events" / "schemas"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    from services.stack import StackError

    try:
        code: int = args.handler(args, settings)
    except StackError as exc:
        print(f"consent-ledger: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
