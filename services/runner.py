"""``consent-ledger run``: the stack plus every service, in the foreground, until Ctrl-C."""

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

from services import stack
from services.config import Settings

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


def spawn(service: Service, settings: Settings) -> subprocess.Popen[bytes]:
    """Start one service as a child process with the stack's settings in its environment."""
    env = {**os.environ, **settings.to_env()}
    log = open(settings.stack_dir / f"{service.name}.log", "ab")  # noqa: SIM115 - child owns it
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", service.name], env=env, stdout=log, stderr=log
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


def start_services(settings: Settings) -> list[tuple[Service, subprocess.Popen[bytes]]]:
    """Start every service, register it with the stack, and wait until each is ready."""
    started = []
    for service in services_of(settings):
        process = spawn(service, settings)
        started.append((service, process))
        stack.register_service(settings, service.name, service.url, process.pid)
    for service, process in started:
        wait_ready(service, process)
    return started


def stop_services(started: list[tuple[Service, subprocess.Popen[bytes]]]) -> None:
    for _, process in started:
        process.terminate()
    for _, process in started:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def banner(settings: Settings, info: stack.StackInfo) -> str:
    lines = [
        "",
        "consent-ledger is running:",
        f"  intake API      http://{settings.intake_host}:{settings.intake_port}/docs",
        f"  projector API   http://{settings.projector_host}:{settings.projector_port}/docs",
        f"  Kafka           {info.kafka_bootstrap}",
        f"  PostgreSQL      {info.database_url}",
        f"  logs            {settings.stack_dir}/*.log",
        "Press Ctrl-C to stop everything.",
        "",
    ]
    return "\n".join(lines)


async def run(settings: Settings, database_url_given: bool) -> None:
    """Start everything, print where to reach it, and stop it all on SIGINT or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    started: list[tuple[Service, subprocess.Popen[bytes]]] = []
    try:
        info = await stack.up(settings, database_url_given=database_url_given)
        started = await asyncio.to_thread(start_services, settings)
        print(banner(settings, info), flush=True)
        await stop.wait()
    finally:
        stack.print_progress("stopping services and the stack...")
        await asyncio.to_thread(stop_services, started)
        await asyncio.to_thread(stack.down, settings)
