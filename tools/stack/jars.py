"""Get the Kafka broker jars: from $KAFKA_HOME, from the cache, or from Maven Central once."""

from __future__ import annotations

import asyncio
import fcntl
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tools.stack.errors import StackError
from tools.stack.tools import require_maven

# Kafka 4.0-4.4 depend on slf4j-api 1.7.36 and log4j-core 2.24.x but ship no SLF4J binding
# in the Maven artifacts; log4j-slf4j-impl is the SLF4J 1.x -> log4j2 bridge the release
# tarball adds. Pinning log4j-api/core here keeps all three log4j jars on one version.
SLF4J_VERSION = "1.7.36"
LOG4J_VERSION = "2.24.3"
MARKER = "complete"

_DEPENDENCY = (
    "    <dependency><groupId>{g}</groupId><artifactId>{a}</artifactId>"
    "<version>{v}</version></dependency>"
)


def render_pom(kafka_version: str) -> str:
    """A packaging-pom project whose runtime dependencies are exactly the broker's classpath."""
    deps = [
        ("org.apache.kafka", "kafka_2.13", kafka_version),
        ("org.slf4j", "slf4j-api", SLF4J_VERSION),
        ("org.apache.logging.log4j", "log4j-api", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-core", LOG4J_VERSION),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", LOG4J_VERSION),
    ]
    lines = "\n".join(_DEPENDENCY.format(g=g, a=a, v=v) for g, a, v in deps)
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0">\n'
        "  <modelVersion>4.0.0</modelVersion>\n"
        "  <groupId>local.consent-ledger</groupId>\n"
        f"  <artifactId>kafka-broker-{kafka_version}</artifactId>\n"
        "  <version>1</version>\n"
        "  <packaging>pom</packaging>\n"
        f"  <dependencies>\n{lines}\n  </dependencies>\n"
        "</project>\n"
    )


def cache_dir(cache_root: Path, kafka_version: str) -> Path:
    """`<cache_root>/kafka-<version>`: the pom, the Maven log, libs/ and the marker.

    Every stack of a checkout (``make run``'s, the test suite's) shares one cache root.
    """
    return cache_root / f"kafka-{kafka_version}"


def cached_libs(cache_root: Path, kafka_version: str) -> Path | None:
    """The libs folder for this version, if a fetch into it completed."""
    folder = cache_dir(cache_root, kafka_version)
    return folder / "libs" if (folder / MARKER).is_file() else None


def kafka_home_classpath() -> str | None:
    """`$KAFKA_HOME/libs/*` when KAFKA_HOME points at an installed Kafka."""
    home = os.environ.get("KAFKA_HOME")
    if not home:
        return None
    libs = Path(home) / "libs"
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise StackError(
            f"KAFKA_HOME={home} does not look like a Kafka install: no {libs}/kafka_*.jar"
        )
    return f"{libs}/*"


async def broker_classpath(
    cache_root: Path, kafka_version: str, progress: Callable[[str], None]
) -> str:
    """The java -cp value for the broker, downloading the jars on the first run only."""
    from_home = kafka_home_classpath()
    if from_home is not None:
        return from_home
    libs = cached_libs(cache_root, kafka_version)
    if libs is None:
        folder = cache_dir(cache_root, kafka_version)
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "fetch.lock").open("a") as lock:  # two first `up`s must not fetch at once
            await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
            libs = cached_libs(cache_root, kafka_version) or await fetch(
                folder, kafka_version, progress
            )
    return f"{libs}/*"


async def fetch(folder: Path, kafka_version: str, progress: Callable[[str], None]) -> Path:
    """Run Maven's copy-dependencies into folder/libs and mark the folder complete."""
    mvn = require_maven()
    progress(f"fetching Kafka {kafka_version} jars with Maven (first run only, ~100 MB)...")
    started = time.monotonic()
    libs = folder / "libs"
    shutil.rmtree(libs, ignore_errors=True)
    (folder / "pom.xml").write_text(render_pom(kafka_version))
    log = folder / "maven.log"
    with log.open("wb") as out:
        proc = await asyncio.create_subprocess_exec(
            mvn, "-B", "dependency:copy-dependencies", "-DincludeScope=runtime",
            f"-DoutputDirectory={libs}", cwd=folder, stdout=out, stderr=out,
            stdin=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        code = await proc.wait()
    if code != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise StackError(f"Maven could not fetch Kafka {kafka_version} (see {log}):\n{tail}")
    (folder / MARKER).write_text(kafka_version + "\n")
    count = len(list(libs.glob("*.jar")))
    progress(f"fetched {count} jars into {libs} ({time.monotonic() - started:.1f} s)")
    return libs
