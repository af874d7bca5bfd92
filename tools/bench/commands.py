"""The benchmark's commands of ``python -m tools``: ``bench``, ``bench-compare``, ``bench-steps``.

Apart from tools/cli.py so that the developer's command stays small; their arguments are
checked here, before any stack starts, so that a typo costs nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from services.cli import SubParsers, add_command, positive_seconds, whole_number
from tools.bench.plan import MEASUREMENTS, select
from tools.stack.settings import StackSettings


def _count_or_none(value: str) -> int:
    """A whole number, 0 meaning none (argparse type of ``--warm-up``)."""
    return whole_number(value, least=0)


def _measurements(value: str) -> list[str]:
    """The names of ``--only``, checked here so that a typo fails before the stack starts."""
    names = [name.strip() for name in value.split(",") if name.strip()]
    try:
        select(names)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return names


def cmd_bench(args: argparse.Namespace, settings: StackSettings) -> int:
    from tools.bench.main import configure, main

    config = configure(
        events=args.events,
        subjects=args.subjects,
        large=args.large,
        out=Path(args.out) if args.out else None,
        http_rate=args.http_rate,
        lag_rate=args.lag_rate,
        warm_up=args.warm_up,
        only=args.only or (),
    )
    return main(config)


def cmd_bench_compare(args: argparse.Namespace, settings: StackSettings) -> int:
    from tools.bench.report import format_table
    from tools.bench.scaling import CompareError, compare, load, made_when

    try:
        smaller, larger = [load(Path(f)) for f in args.smaller], load(Path(args.larger))
        rows = compare(smaller, larger)
    except CompareError as exc:
        print(f"consent-ledger: {exc}", file=sys.stderr)
        return 2
    print(format_table(rows))
    if when := made_when(smaller, larger):
        print(f"\n{when}")
    return 0


def cmd_bench_steps(args: argparse.Namespace, settings: StackSettings) -> int:
    from tools.bench.steps import main

    return main(args.events, args.subjects, settings.projector_batch_max, args.rounds)


def add_commands(commands: SubParsers) -> None:
    """Register ``bench``, ``bench-compare`` and ``bench-steps`` on the developer's parser."""
    bench = add_command(
        commands,
        "bench",
        cmd_bench,
        "measure throughput, latency and memory on a stack of its own (.stack/bench); print "
        "a table and write it as JSON",
    )
    bench.add_argument(
        "--events",
        type=whole_number,
        help="events per throughput run (default 30,000; --large 5 M)",
    )
    bench.add_argument(
        "--subjects",
        type=whole_number,
        help="distinct subjects (default 6,000; --large 1 M: 5 events each in both)",
    )
    bench.add_argument(
        "--large", action="store_true", help="1,000,000 subjects and 5,000,000 events"
    )
    bench.add_argument(
        "--out", metavar="FILE", help="the JSON file (default: bench-results/<UTC time>.json)"
    )
    bench.add_argument(
        "--http-rate",
        type=positive_seconds,
        metavar="REQ_PER_S",
        help="single-event requests/s offered in the open-loop run (default 500; --large 2000)",
    )
    bench.add_argument(
        "--lag-rate",
        type=positive_seconds,
        metavar="EVENTS_PER_S",
        help="events/s offered while measuring end-to-end lag (default 200; --large 5000)",
    )
    bench.add_argument(
        "--warm-up",
        type=_count_or_none,
        metavar="RECORDS",
        help="records sent through the broker and read back before measuring, so that its "
        "start-up is not charged to the first measurement (default 40,000; 0: none)",
    )
    bench.add_argument(
        "--only",
        type=_measurements,
        metavar="NAME,...",
        help=f"make only these measurements ({', '.join(MEASUREMENTS)}); replay brings "
        "projection along, whose ledger it rebuilds",
    )
    compare = add_command(
        commands,
        "bench-compare",
        cmd_bench_compare,
        "the linearity target: a larger bench run's cost per event against smaller runs'",
    )
    compare.add_argument(
        "smaller", nargs="+", help="result files of `bench` runs of one size (e.g. default runs)"
    )
    compare.add_argument("larger", help="the result file of a larger run (e.g. --large)")
    steps = add_command(
        commands,
        "bench-steps",
        cmd_bench_steps,
        "the CPU per event of each pure step of the projector, in this process (no stack)",
    )
    steps.add_argument("--events", type=whole_number, default=30_000, help="default 30,000")
    steps.add_argument("--subjects", type=whole_number, default=6_000, help="default 6,000")
    steps.add_argument(
        "--rounds", type=whole_number, default=3, help="passes per step, the least kept (default 3)"
    )
