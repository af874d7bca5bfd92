"""Find the external programs the stack runs, and say how to install any that are missing."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
from pathlib import Path

from tools.stack.errors import StackError

JAVA_MIN = 17
PG_LIB_ROOT = Path("/usr/lib/postgresql")
_JAVA_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?')


def parse_java_major(version_output: str) -> int | None:
    """Major Java version from `java -version` output ("1.8.0_x" is 8, "17.0.15" is 17)."""
    match = _JAVA_VERSION.search(version_output)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def require_java() -> str:
    """Path of a Java 17+ `java`; Kafka 4.x brokers do not start on older JVMs."""
    hint = "Install it with: apt-get install openjdk-17-jre-headless"
    java = shutil.which("java")
    if java is None:
        raise StackError(
            f"Java {JAVA_MIN}+ is needed to run the Kafka broker: `java` was not found on PATH. "
            + hint
        )
    result = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
    major = parse_java_major(result.stderr + result.stdout)
    if major is None or major < JAVA_MIN:
        found = "an unknown version" if major is None else f"Java {major}"
        raise StackError(
            f"Java {JAVA_MIN}+ is needed to run the Kafka broker, but `{java}` is {found}. " + hint
        )
    return java


def require_maven() -> str:
    """Path of `mvn`, which fetches the broker jars from Maven Central on the first run."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise StackError(
            "Maven is needed once to download the Kafka broker jars: `mvn` was not found on PATH. "
            "Install it with: apt-get install maven "
            "(or point KAFKA_HOME at an unpacked Kafka 4.x release)."
        )
    return mvn


def find_pg_bindir(lib_root: Path = PG_LIB_ROOT) -> Path:
    """Directory holding initdb and pg_ctl; Debian keeps them off PATH, under lib_root/<N>/bin."""
    on_path = shutil.which("pg_ctl")
    candidates = [Path(on_path).resolve().parent] if on_path else []
    versions = sorted(
        (p for p in lib_root.glob("*/bin") if p.parent.name.isdigit()),
        key=lambda p: int(p.parent.name),
        reverse=True,
    )
    for bindir in [*candidates, *versions]:
        if (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file():
            return bindir
    raise StackError(
        "PostgreSQL 15 server programs (initdb, pg_ctl) are needed to run the local database, "
        f"but they were found neither on PATH nor in {lib_root}/<version>/bin. "
        "Install them with: apt-get install postgresql-15 "
        "(or set CONSENT_LEDGER_DATABASE_URL to a server you already run)."
    )


def as_postgres_owner(command: list[str]) -> list[str]:
    """Prefix a command with runuser when we are root, because initdb and postgres refuse root."""
    if os.geteuid() != 0:
        return command
    require_postgres_user()
    return ["runuser", "-u", "postgres", "--", *command]


def require_postgres_user() -> pwd.struct_passwd:
    """The `postgres` system account that owns the data directory when we run as root."""
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise StackError(
            "PostgreSQL refuses to run as root and there is no `postgres` system user to run it "
            "as. Install the server package (apt-get install postgresql-15) or run as an "
            "ordinary user."
        ) from None
