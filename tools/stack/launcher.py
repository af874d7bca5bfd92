"""`up`, `down` and `status` of a local stack: Kafka + PostgreSQL + topics + schema."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from services.config import Settings
from services.messaging import topics
from services.privacy.secrets import ensure_local_secrets
from tools.stack import kafka, procs
from tools.stack import postgres as pg
from tools.stack.errors import StackError
from tools.stack.jars import broker_classpath
from tools.stack.ports import (
    LOOPBACK,
    controller_port,
    free_port,
    free_port_pair,
    kafka_port,
    postgres_port,
    require_free,
)
from tools.stack.settings import StackSettings
from tools.stack.state import (
    ProcessEntry,
    ServiceEntry,
    StackInfo,
    StackState,
    clear_state,
    edit_state,
    load_state,
)
from tools.stack.tools import find_pg_bindir, require_java

SERVICE_STOP_TIMEOUT_S = 10.0

Progress = Callable[[str], None]


def print_progress(message: str) -> None:
    """Default progress sink: one plain line per step on stderr."""
    print(f"[stack] {message}", file=sys.stderr, flush=True)


async def up(
    settings: StackSettings,
    *,
    database_url_given: bool = False,
    progress: Progress = print_progress,
) -> StackInfo:
    """Start (or reuse) Kafka and PostgreSQL, create topics, migrate; return when all is ready.

    The processes run detached and outlive the caller; `down` stops them. When nothing ran
    before this call and a step fails, whatever this call started is stopped again.
    """
    settings.stack_dir.mkdir(parents=True, exist_ok=True)
    was_running = _status(settings.stack_dir) is not None
    try:
        await _bring_up(settings, database_url_given, progress)
    except BaseException:
        if not was_running:
            await asyncio.to_thread(down, settings)
        raise
    info = _status(settings.stack_dir)
    if info is None:
        raise StackError(f"the stack in {settings.stack_dir} stopped right after starting")
    return info


async def _bring_up(settings: StackSettings, database_url_given: bool, progress: Progress) -> None:
    ensure_local_secrets(settings)
    broker, launched = await _launch_kafka(settings, progress)
    await _start_postgres(settings, database_url_given, progress)
    await kafka.wait_ready(settings.kafka_bootstrap, broker, kafka.kafka_paths(settings.stack_dir))
    progress(f"Kafka ready at {settings.kafka_bootstrap} ({time.monotonic() - launched:.1f} s)")
    await topics.ensure_topics(settings)
    progress("topics ready: " + ", ".join(t.name for t in topics.topic_specs(settings)))
    await _apply_migrations(settings.database_url, progress)


async def _launch_kafka(settings: StackSettings, progress: Progress) -> tuple[ProcessEntry, float]:
    """Start the broker without waiting for it (PostgreSQL starts meanwhile); reuse a live one."""
    state = load_state(settings.stack_dir)
    if state is not None and state.kafka is not None and state.kafka.alive():
        _same_address("Kafka", state.kafka_bootstrap, settings.kafka_bootstrap, settings)
        progress(f"Kafka already running at {state.kafka_bootstrap} (pid {state.kafka.pid})")
        return state.kafka, time.monotonic()
    port, cport = kafka_port(settings), controller_port(settings)
    require_free(port, "the Kafka broker", "CONSENT_LEDGER_KAFKA_BOOTSTRAP")
    require_free(cport, "the Kafka controller", "CONSENT_LEDGER_KAFKA_BOOTSTRAP (its port + 1)")
    java = require_java()
    classpath = await broker_classpath(settings.cache_dir, settings.kafka_version, progress)
    paths = kafka.kafka_paths(settings.stack_dir)
    cluster_id = kafka.write_config(paths, port=port, controller_port=cport)
    if await kafka.format_storage(java, classpath, paths, cluster_id):
        progress(f"formatted Kafka storage in {paths.data} (cluster id {cluster_id})")
    broker = kafka.launch(java, classpath, paths)
    with edit_state(settings.stack_dir) as saved:
        saved.kafka, saved.kafka_bootstrap, saved.kafka_controller_port = (
            broker, settings.kafka_bootstrap, cport,
        )  # fmt: skip
    progress(f"starting Kafka {settings.kafka_version} (pid {broker.pid}, logs in {paths.logs})")
    return broker, time.monotonic()


async def _start_postgres(settings: StackSettings, given: bool, progress: Progress) -> None:
    """Check a given server, or start (or reuse) the stack's own cluster and its database."""
    url = settings.database_url
    if given:
        await pg.wait_ready(url, pg.GIVEN_URL_TIMEOUT_S)
        progress(f"using the database you gave at {_host_port(url)}")
    else:
        started = time.monotonic()
        await _run_own_postgres(settings, progress)
        progress(f"PostgreSQL ready at {_host_port(url)} ({time.monotonic() - started:.1f} s)")
    with edit_state(settings.stack_dir) as saved:
        saved.database_url = url


async def _run_own_postgres(settings: StackSettings, progress: Progress) -> None:
    bindir, paths, port = find_pg_bindir(), pg.pg_paths(settings.stack_dir), postgres_port(settings)
    pid = pg.running_pid(paths)
    if pid is not None:
        state = load_state(settings.stack_dir) or StackState()
        _same_address("PostgreSQL", f"port {state.postgres_port or port}", f"port {port}", settings)
        progress(f"PostgreSQL already running on port {port} (pid {pid})")
        entry = ProcessEntry.of(pid)
    else:
        require_free(port, "PostgreSQL", "the port in CONSENT_LEDGER_DATABASE_URL")
        user, _ = pg.url_user_and_db(settings.database_url)
        if await pg.init_cluster(bindir, paths, user):
            progress(f"initialised a PostgreSQL cluster in {paths.data}")
        entry = await pg.start(bindir, paths, port)
    with edit_state(settings.stack_dir) as saved:
        saved.postgres, saved.postgres_port, saved.postgres_bindir = entry, port, str(bindir)
    await pg.wait_ready(pg.admin_url(settings.database_url), pg.READY_TIMEOUT_S, paths.log)
    if stale := await pg.settings_to_restart(settings.database_url):
        progress(
            f"PostgreSQL runs without {', '.join(stale)}; they apply once the stack is "
            "restarted: python -m tools stack down, then up"
        )
    if await pg.ensure_database(settings.database_url):
        progress(f"created database {pg.url_user_and_db(settings.database_url)[1]}")


def _same_address(what: str, running: str, wanted: str, settings: StackSettings) -> None:
    if running != wanted:
        raise StackError(
            f"{what} of the stack in {settings.stack_dir} already runs at {running}, not "
            f"{wanted}. Stop it first with: python -m tools stack down"
        )


def _host_port(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}"


async def _apply_migrations(database_url: str, progress: Progress) -> None:
    from projections.migrations import apply  # written alongside; imported late on purpose

    applied = await apply(database_url)
    progress("applied migrations: " + ", ".join(applied) if applied else "schema is up to date")


def down(settings: Settings) -> None:
    """Stop registered services, Kafka and PostgreSQL of this stack; fine when nothing runs."""
    stack_dir = settings.stack_dir
    if not stack_dir.is_dir():
        return
    state = load_state(stack_dir) or StackState()
    for entry in state.services.values():
        if entry.pid != os.getpid() and entry.alive():
            procs.terminate(entry.pid, SERVICE_STOP_TIMEOUT_S)
    if state.kafka is not None:
        kafka.stop(state.kafka)
    paths = pg.pg_paths(stack_dir)
    if pg.running_pid(paths) is not None:
        bindir = Path(state.postgres_bindir) if state.postgres_bindir else find_pg_bindir()
        pg.stop(bindir, paths)
    clear_state(stack_dir)


def status(settings: Settings) -> StackInfo | None:
    """The running stack's addresses, or None when its Kafka or PostgreSQL is not running."""
    return _status(settings.stack_dir)


def _status(stack_dir: Path) -> StackInfo | None:
    state = load_state(stack_dir)
    if state is None or state.kafka is None or not state.kafka.alive():
        return None
    if state.postgres is not None and not state.postgres.alive():
        return None
    services = {name: entry.url for name, entry in state.services.items() if entry.alive()}
    return StackInfo(state.kafka_bootstrap, state.database_url, services)


def register_service(settings: Settings, name: str, url: str, pid: int) -> None:
    """Record an HTTP service so `status` lists it and `down` stops it."""
    entry = ServiceEntry(pid=pid, start_time=procs.start_time(pid), url=url)
    with edit_state(settings.stack_dir) as state:
        state.services[name] = entry


def unregister_service(settings: Settings, name: str) -> None:
    """Forget a service that stopped by itself."""
    if settings.stack_dir.is_dir():
        with edit_state(settings.stack_dir) as state:
            state.services.pop(name, None)


def isolated_settings(base: StackSettings, name: str = "test") -> StackSettings:
    """Settings for a second stack in `<base.stack_dir>/<name>` that cannot collide with the first.

    A stack already running there keeps its ports; otherwise every port is a free one.
    """
    stack_dir = base.stack_dir / name
    running = _status(stack_dir)
    if running is not None:
        bootstrap, database_url = running.kafka_bootstrap, running.database_url
    else:
        taken = {kafka_port := free_port_pair(), kafka_port + 1}
        bootstrap = f"{LOOPBACK}:{kafka_port}"
        database_url = _with_port(base.database_url, _free_port_except(taken))
    return base.model_copy(
        update={
            "stack_dir": stack_dir,
            "kafka_bootstrap": bootstrap,
            "database_url": database_url,
            "intake_port": free_port(),
            "projector_port": free_port(),
        }
    )


def _free_port_except(taken: set[int]) -> int:
    while (port := free_port()) in taken:
        pass
    return port


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{LOOPBACK}:{port}"))


async def run_foreground(
    settings: StackSettings,
    *,
    database_url_given: bool = False,
    progress: Progress = print_progress,
) -> None:
    """`up`, then wait for SIGINT/SIGTERM, then `down` (the CLI's `stack up` without --detach)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await up(settings, database_url_given=database_url_given, progress=progress)
        progress("stack is up; press Ctrl-C to stop it")
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        progress("stopping the stack...")
        await asyncio.to_thread(down, settings)
