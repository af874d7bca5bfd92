"""``python -m tools``: the developer's command, run from a clone (the Makefile's ``run``,
``bench`` and ``stack-*`` targets). The local Kafka + PostgreSQL stack, everything on it in
the foreground, the benchmark and the reference audience consumer; none of it ships, so the
product's ``consent-ledger`` (services/cli.py) has only what production runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

from services.cli import SubParsers, add_command, dispatch
from services.messaging.topics import TopicsError
from services.process import run_service
from tools.bench.commands import add_commands as add_bench_commands
from tools.stack.errors import StackError
from tools.stack.settings import StackSettings


def _database_url_given(args: argparse.Namespace, settings: StackSettings) -> bool:
    """Whether to use an existing PostgreSQL rather than start the stack's own."""
    if getattr(args, "database_url", None):
        return True
    if settings.stack_postgres is not None:
        return not settings.stack_postgres
    return "CONSENT_LEDGER_DATABASE_URL" in os.environ


def _settings(args: argparse.Namespace) -> StackSettings:
    """The environment's settings; ``--database-url`` (of ``stack up`` and ``run``) wins."""
    settings = StackSettings()
    if getattr(args, "database_url", None):
        settings = settings.model_copy(update={"database_url": args.database_url})
    return settings


def cmd_stack_up(args: argparse.Namespace, settings: StackSettings) -> int:
    from tools import stack

    given = _database_url_given(args, settings)
    if args.detach:
        info = asyncio.run(stack.up(settings, database_url_given=given))
        print(json.dumps(info.to_json(), indent=2))
    else:
        asyncio.run(stack.run_foreground(settings, database_url_given=given))
    return 0


def cmd_stack_down(args: argparse.Namespace, settings: StackSettings) -> int:
    from tools import stack

    stack.down(settings)
    stack.print_progress("stopped")
    return 0


def cmd_stack_status(args: argparse.Namespace, settings: StackSettings) -> int:
    from tools import stack

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


def cmd_run(args: argparse.Namespace, settings: StackSettings) -> int:
    from tools.runner import run

    asyncio.run(run(settings, _database_url_given(args, settings)))
    return 0


def cmd_audience(args: argparse.Namespace, settings: StackSettings) -> int:
    """The consumer reads its own settings (its database's), from the same environment."""
    from services.logs import configure
    from tools.audience.main import run
    from tools.audience.settings import AudienceSettings

    audience = AudienceSettings()
    configure(audience.log_level)
    run_service(run(audience))
    return 0


def _add_stack_commands(commands: SubParsers) -> None:
    stack_cmd = commands.add_parser(
        "stack",
        help="the local Kafka + PostgreSQL stack",
        description="Run Kafka and PostgreSQL locally, without Docker.",
    )
    stack_sub = stack_cmd.add_subparsers(dest="stack_command", required=True, metavar="ACTION")
    up = add_command(
        stack_sub,
        "up",
        cmd_stack_up,
        "start Kafka and PostgreSQL (fetched and created on first use), create the topics "
        "and apply migrations; Ctrl-C stops everything",
    )
    up.add_argument("--detach", action="store_true", help="return once ready; stop with `down`")
    up.add_argument("--database-url", help="use this PostgreSQL instead of starting one")
    add_command(stack_sub, "down", cmd_stack_down, "stop everything the stack started")
    st = add_command(
        stack_sub, "status", cmd_stack_status, "where Kafka, PostgreSQL and services are"
    )
    st.add_argument("--json", action="store_true", help="print JSON")
    run = add_command(
        commands,
        "run",
        cmd_run,
        "start the stack and every service in the foreground; Ctrl-C stops all",
    )
    run.add_argument("--database-url", help="use this PostgreSQL instead of starting one")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tools",
        description="The consent-ledger developer's tools: the local stack, the benchmark, the "
        "reference audience consumer. Settings come from CONSENT_LEDGER_* environment "
        "variables, as for consent-ledger.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_stack_commands(commands)
    add_bench_commands(commands)
    audience = commands.add_parser(
        "audience",
        help="the reference feed consumer: keep an audience table in sync",
        description="Read the feed from the start and keep audience_members (PostgreSQL: "
        "CONSENT_LEDGER_AUDIENCE_DATABASE_URL, default the ledger's) in sync, until "
        "SIGINT/SIGTERM.",
    )
    audience.set_defaults(handler=cmd_audience)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return dispatch(args, _settings(args), StackError, TopicsError)


if __name__ == "__main__":
    sys.exit(main())
