"""``python -m tools run``: the stack plus every service, in the foreground, until Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from projections.db import create_pool
from services.access.tokens import AuthError, TokenStore
from services.config import Settings
from services.privacy.secrets import local_secrets_dir
from tools import stack
from tools.stack.settings import StackSettings

READY_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Service:
    name: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def services_of(settings: Settings) -> list[Service]:
    return [
        Service("intake", settings.intake_host, settings.intake_port),
        Service("projector", settings.projector_host, settings.projector_port),
    ]


def spawn(command: str, settings: Settings, *args: str) -> subprocess.Popen[bytes]:
    """Run ``consent-ledger <command> <args>`` as a child process with the stack's settings in
    its environment and its output in ``<stack_dir>/<command>.log``."""
    env = {**os.environ, **settings.to_env()}
    log = open(settings.stack_dir / f"{command}.log", "ab")  # noqa: SIM115 - child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", command, *args], env=env, stdout=log, stderr=log
    )


def wait_ready(service: Service, process: subprocess.Popen[bytes]) -> None:
    """Poll ``/readyz`` until it answers 200; fail if the process dies or time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise stack.StackError(f"{service.name} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(f"{service.url}/readyz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.3)
    raise stack.StackError(f"{service.name} was not ready within {READY_TIMEOUT_S:.0f} s")


def start_services(settings: Settings) -> list[subprocess.Popen[bytes]]:
    """Start every HTTP service (registered with the stack, ready when ``/readyz`` says so),
    the retention job and the feed publisher, which have no HTTP side and are stopped with the
    others."""
    started = []
    for service in services_of(settings):
        process = spawn(service.name, settings)
        started.append((service, process))
        stack.register_service(settings, service.name, service.url, process.pid)
    for service, process in started:
        wait_ready(service, process)
    others = [spawn("retention", settings, "serve"), spawn("feed", settings)]
    return [process for _, process in started] + others


def stop_services(started: list[subprocess.Popen[bytes]]) -> None:
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


LOCAL_TOKEN_FILE = "dpo.token"


async def ensure_local_token(settings: Settings, database_url: str) -> Path:
    """A DPO token for trying the local stack, kept in ``<stack_dir>/secrets`` (mode 0600) and
    issued again if it was revoked or the database is new; the banner names its file."""
    path = local_secrets_dir(settings) / LOCAL_TOKEN_FILE
    pool = await create_pool(database_url, max_size=1)
    try:
        store = TokenStore(pool)
        if path.exists():
            try:
                await store.authenticate(path.read_text().strip())
                return path
            except AuthError:
                path.unlink()
        token, _ = await store.create("dpo", "make run (local stack)")
    finally:
        await pool.close()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return path


def banner(settings: Settings, info: stack.StackInfo, token: Path) -> str:
    lines = [
        "",
        "consent-ledger is running:",
        f"  intake API      http://{settings.intake_host}:{settings.intake_port}/docs",
        f"  projector API   http://{settings.projector_host}:{settings.projector_port}/docs",
        "  retention job   every 300 s (consent-ledger retention serve)",
        f"  feed            Kafka topic {settings.feed_topic} (consent-ledger feed)",
        f"  Kafka           {info.kafka_bootstrap}",
        f"  PostgreSQL      {info.database_url}",
        f"  logs            {settings.stack_dir}/*.log",
        f"  a DPO token     {token} (local stack only; more: consent-ledger tokens create)",
        "Press Ctrl-C to stop everything.",
        "",
    ]
    return "\n".join(lines)


async def run(settings: StackSettings, database_url_given: bool) -> None:
    """Start everything, print where to reach it, and stop it all on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[subprocess.Popen[bytes]] = []
    try:
        info = await stack.up(settings, database_url_given=database_url_given)
        token = await ensure_local_token(settings, info.database_url)
        started = await asyncio.to_thread(start_services, settings)
        print(banner(settings, info, token), flush=True)
        await stop.wait()
    finally:
        stack.print_progress("stopping services and the stack...")
        await asyncio.to_thread(stop_services, started)
        await asyncio.to_thread(stack.down, settings)
