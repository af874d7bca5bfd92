"""What the stack says when java, mvn or the PostgreSQL programs are missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.stack import StackError
from tools.stack.tools import find_pg_bindir, parse_java_major, require_java, require_maven


@pytest.fixture
def empty_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    return empty


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15', 17),
        ('openjdk version "21" 2023-09-19', 21),
        ('java version "1.8.0_402"', 8),
        ("garbage", None),
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_missing_java_says_how_to_install(empty_path: Path) -> None:
    with pytest.raises(StackError, match=r"Java 17\+ is needed") as caught:
        require_java()
    assert "`java` was not found on PATH" in str(caught.value)
    assert "apt-get install openjdk-17-jre-headless" in str(caught.value)


def test_old_java_is_refused(empty_path: Path) -> None:
    fake = empty_path / "java"
    fake.write_text("#!/bin/sh\necho 'java version \"1.8.0_402\"' >&2\n")
    fake.chmod(0o755)
    with pytest.raises(StackError, match="is Java 8"):
        require_java()


def test_missing_maven_says_how_to_install(empty_path: Path) -> None:
    with pytest.raises(StackError, match="`mvn` was not found on PATH") as caught:
        require_maven()
    assert "apt-get install maven" in str(caught.value)


def test_missing_postgres_says_how_to_install(empty_path: Path, tmp_path: Path) -> None:
    with pytest.raises(StackError, match=r"initdb, pg_ctl") as caught:
        find_pg_bindir(tmp_path / "no-postgresql")
    assert "apt-get install postgresql-15" in str(caught.value)
    assert "CONSENT_LEDGER_DATABASE_URL" in str(caught.value)


def test_postgres_found_in_debian_layout_newest_first(empty_path: Path, tmp_path: Path) -> None:
    for version in ("9", "15", "16"):
        bindir = tmp_path / "lib" / version / "bin"
        bindir.mkdir(parents=True)
        (bindir / "initdb").touch()
        (bindir / "pg_ctl").touch()
    assert find_pg_bindir(tmp_path / "lib") == tmp_path / "lib" / "16" / "bin"
