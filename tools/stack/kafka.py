"""One KRaft combined broker+controller node on loopback (the topics: services.messaging.topics)."""

from __future__ import annotations

import asyncio
import base64
import logging
import subprocess
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from tools.stack import procs
from tools.stack.errors import StackError
from tools.stack.ports import LOOPBACK
from tools.stack.state import ProcessEntry

READY_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 30.0
JVM_OPTS = ("-Xms256m", "-Xmx512m", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20")

LOG4J2_PROPERTIES = """\
status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.state.name = state.change.logger
logger.state.level = WARN
logger.request.name = kafka.request.logger
logger.request.level = WARN
"""


@dataclass(frozen=True)
class KafkaPaths:
    """Where one stack keeps its broker's config, data and logs (`<stack_dir>/kafka`)."""

    root: Path

    @property
    def properties(self) -> Path:
        return self.root / "server.properties"

    @property
    def log4j(self) -> Path:
        return self.root / "log4j2.properties"

    @property
    def cluster_id(self) -> Path:
        return self.root / "cluster-id"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def server_log(self) -> Path:
        return self.logs / "server.log"

    @property
    def console(self) -> Path:
        return self.logs / "console.out"


def kafka_paths(stack_dir: Path) -> KafkaPaths:
    return KafkaPaths(stack_dir / "kafka")


def render_server_properties(
    *, port: int, controller_port: int, data_dir: Path, extra: Mapping[str, str] | None = None
) -> str:
    """A single-node KRaft config: every replication factor and min ISR is 1. ``extra`` adds or
    replaces settings (the test of TLS and SASL adds a listener with them)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.voters": f"1@{LOOPBACK}:{controller_port}",
        "listeners": f"PLAINTEXT://{LOOPBACK}:{port},CONTROLLER://{LOOPBACK}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{LOOPBACK}:{port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "1",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # The cleaner looks for a log to clean every second instead of 15 s, so that a short
        # CONSENT_LEDGER_FEED_FORGET_AFTER_S (the tests') is kept; cheap on a local broker.
        "log.cleaner.backoff.ms": "1000",
        **(extra or {}),
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


def new_cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes, URL-safe base64 without padding, not starting '-'.

    Same format as `kafka-storage random-uuid`, without paying for a JVM start.
    """
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not text.startswith("-"):
            return text


def write_config(
    paths: KafkaPaths, *, port: int, controller_port: int, extra: Mapping[str, str] | None = None
) -> str:
    """(Re)write server.properties and the log4j config; return the cluster id, made once."""
    paths.logs.mkdir(parents=True, exist_ok=True)
    paths.properties.write_text(
        render_server_properties(
            port=port, controller_port=controller_port, data_dir=paths.data, extra=extra
        )
    )
    paths.log4j.write_text(LOG4J2_PROPERTIES)
    if not paths.cluster_id.is_file():
        paths.cluster_id.write_text(new_cluster_id() + "\n")
    return paths.cluster_id.read_text().strip()


def _java_command(java: str, classpath: str, paths: KafkaPaths, *args: str) -> list[str]:
    return [
        java, *JVM_OPTS, "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={paths.log4j}", f"-Dkafka.logs.dir={paths.logs}",
        "-cp", classpath, *args,
    ]  # fmt: skip


async def format_storage(
    java: str, classpath: str, paths: KafkaPaths, cluster_id: str, *extra: str
) -> bool:
    """Format the data dir unless an earlier run did; True when it formatted now. ``extra``
    goes to the storage tool (``--add-scram ...`` creates SASL/SCRAM users)."""
    if (paths.data / "meta.properties").is_file():
        return False
    command = _java_command(
        java, classpath, paths, "kafka.tools.StorageTool", "format",
        "-t", cluster_id, "-c", str(paths.properties), "--ignore-formatted", *extra,
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    output, _ = await proc.communicate()
    if proc.returncode != 0:
        raise StackError(f"formatting Kafka storage failed:\n{output.decode(errors='replace')}")
    return True


def launch(java: str, classpath: str, paths: KafkaPaths) -> ProcessEntry:
    """Start the broker detached, in its own session so `down` can signal the whole group."""
    with paths.console.open("ab") as console:
        proc = subprocess.Popen(
            _java_command(java, classpath, paths, "kafka.Kafka", str(paths.properties)),
            stdin=subprocess.DEVNULL, stdout=console, stderr=console, start_new_session=True,
        )  # fmt: skip
    return ProcessEntry.of(proc.pid)


async def wait_ready(bootstrap: str, broker: ProcessEntry, paths: KafkaPaths) -> None:
    """Return once a real client gets cluster metadata with a live broker in it."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not await _answers_quietly(bootstrap):
        if not broker.alive():
            raise StackError(
                f"the Kafka broker exited while starting; see {paths.server_log} "
                f"and {paths.console}"
            )
        if time.monotonic() > deadline:
            raise StackError(
                f"Kafka did not answer at {bootstrap} within {READY_TIMEOUT_S:.0f} s; "
                f"see {paths.server_log}"
            )
        await asyncio.sleep(procs.POLL_S)


async def _answers_quietly(bootstrap: str) -> bool:
    """One probe; aiokafka logs every refused connection as an error, expected while booting."""
    logger = logging.getLogger("aiokafka")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        return await _answers(bootstrap)
    finally:
        logger.setLevel(level)


async def _answers(bootstrap: str) -> bool:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(PROBE_TIMEOUT_S * 1000)
    )
    try:
        await asyncio.wait_for(admin.start(), PROBE_TIMEOUT_S)
        cluster = await asyncio.wait_for(admin.describe_cluster(), PROBE_TIMEOUT_S)
        return bool(cluster["brokers"])
    except (KafkaError, OSError, TimeoutError):
        return False
    finally:
        await admin.close()


def stop(broker: ProcessEntry) -> None:
    """SIGTERM for a controlled shutdown, SIGKILL to the group if it takes too long."""
    if broker.alive():
        procs.terminate(broker.pid, STOP_TIMEOUT_S, group=True)
