"""A throwaway PostgreSQL cluster under `<stack_dir>/postgres`, or a check of a given server."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from tools.stack import procs
from tools.stack.errors import StackError
from tools.stack.ports import LOOPBACK
from tools.stack.state import ProcessEntry
from tools.stack.tools import as_postgres_owner, require_postgres_user

READY_TIMEOUT_S = 60.0
GIVEN_URL_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 30.0

# The projector writes a few KB of write-ahead log per event, so at full rate it fills
# PostgreSQL's default 1 GB between checkpoints in about a minute. Every checkpoint makes the
# next change to each page log that whole page again, and a million subscribers spread their
# changes over every page. Checkpoints further apart log fewer whole pages, and lz4 compresses
# the ones logged: a five-million-event projection wrote 4.8 KB of log per event, not 6.3
# (docs/performance.md, "Checkpoints"); the log may take up to about 4 GB of disk under load.
# docker-compose.yml starts its server with the same settings.
SERVER_SETTINGS: dict[str, str] = {
    "max_wal_size": "4GB",
    "checkpoint_timeout": "10min",
    "wal_compression": "lz4",
}


@dataclass(frozen=True)
class PgPaths:
    """The cluster's folder: data/, the server log, and the Unix socket (kept off /run)."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"


def pg_paths(stack_dir: Path) -> PgPaths:
    return PgPaths(stack_dir / "postgres")


def url_user_and_db(database_url: str) -> tuple[str, str]:
    """The role and database the URL names; initdb creates the role as superuser."""
    parts = urlsplit(database_url)
    return parts.username or "postgres", parts.path.lstrip("/") or "postgres"


def admin_url(database_url: str) -> str:
    """The same server and role, database `postgres`, for CREATE DATABASE."""
    return urlunsplit(urlsplit(database_url)._replace(path="/postgres"))


async def _run(command: list[str], what: str, log: Path | None = None) -> None:
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await proc.communicate()
    if proc.returncode != 0:
        where = f" (server log: {log})" if log else ""
        raise StackError(f"{what} failed{where}:\n{output.decode(errors='replace').strip()}")


async def init_cluster(bindir: Path, paths: PgPaths, user: str) -> bool:
    """initdb with trust auth unless the data dir exists; True when it initialised now."""
    if (paths.data / "PG_VERSION").is_file():
        return False
    paths.root.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        owner = require_postgres_user()
        os.chown(paths.root, owner.pw_uid, owner.pw_gid)
    command = [
        str(bindir / "initdb"), "-D", str(paths.data), "-A", "trust", "-U", user,
        "-E", "UTF8", "--no-locale",
    ]  # fmt: skip
    await _run(as_postgres_owner(command), "initdb")
    return True


def running_pid(paths: PgPaths) -> int | None:
    """The postmaster's pid from postmaster.pid, if that process still runs."""
    try:
        pid = int((paths.data / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if procs.pid_alive(pid) else None


async def start(bindir: Path, paths: PgPaths, port: int) -> ProcessEntry:
    """pg_ctl start -w: returns when the server accepts connections on loopback only."""
    settings = {"listen_addresses": LOOPBACK, **SERVER_SETTINGS}
    options = f"-k {shlex.quote(str(paths.root))} -p {port} " + " ".join(
        f"-c {name}={value}" for name, value in settings.items()
    )
    command = [
        str(bindir / "pg_ctl"), "-D", str(paths.data), "-o", options, "-l", str(paths.log),
        "-w", "-t", str(int(READY_TIMEOUT_S)), "start",
    ]  # fmt: skip
    await _run(as_postgres_owner(command), "pg_ctl start", paths.log)
    pid = running_pid(paths)
    if pid is None:
        raise StackError(f"PostgreSQL stopped right after starting; see {paths.log}")
    return ProcessEntry.of(pid)


async def wait_ready(database_url: str, timeout_s: float, log: Path | None = None) -> None:
    """Return once asyncpg connects and `select 1` answers; retry until timeout_s."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection = await asyncpg.connect(database_url, timeout=5)
            try:
                await connection.fetchval("select 1")
                return
            finally:
                await connection.close()
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            if time.monotonic() > deadline:
                see = f"; see {log}" if log else ""
                raise StackError(
                    f"PostgreSQL at {database_url} did not answer within {timeout_s:.0f} s "
                    f"({exc}){see}"
                ) from exc
        await asyncio.sleep(procs.POLL_S)


async def settings_to_restart(database_url: str) -> list[str]:
    """The ``SERVER_SETTINGS`` a running server does not have, as ``name=value (now: x)``.

    The settings are given at start, so a server started by an older version keeps its own
    until the stack is stopped and started again."""
    connection = await asyncpg.connect(admin_url(database_url), timeout=5)
    try:
        shown = {name: await connection.fetchval(f"SHOW {name}") for name in SERVER_SETTINGS}
    finally:
        await connection.close()
    return missing_settings(shown)


def missing_settings(shown: Mapping[str, str]) -> list[str]:
    """Each of ``SERVER_SETTINGS`` that ``shown`` (by ``SHOW``) lacks, with its value there."""
    return [
        f"{name}={wanted} (now: {shown.get(name)})"
        for name, wanted in SERVER_SETTINGS.items()
        if shown.get(name) != wanted
    ]


async def ensure_database(database_url: str) -> bool:
    """CREATE DATABASE for the URL's database unless it exists; True when created now."""
    _, dbname = url_user_and_db(database_url)
    connection = await asyncpg.connect(admin_url(database_url), timeout=5)
    try:
        if await connection.fetchval("select 1 from pg_database where datname = $1", dbname):
            return False
        quoted = '"' + dbname.replace('"', '""') + '"'
        await connection.execute(f"create database {quoted}")
        return True
    finally:
        await connection.close()


def stop(bindir: Path, paths: PgPaths) -> None:
    """pg_ctl stop -m fast (rolls back open transactions, no crash recovery on the next start)."""
    pid = running_pid(paths)
    if pid is None:
        return
    command = [str(bindir / "pg_ctl"), "-D", str(paths.data), "-m", "fast", "-w", "stop"]
    result = subprocess.run(as_postgres_owner(command), capture_output=True, check=False)
    if result.returncode != 0 and procs.pid_alive(pid):
        procs.terminate(pid, STOP_TIMEOUT_S)
