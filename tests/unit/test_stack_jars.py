"""Where the broker's jars come from: KAFKA_HOME, the cache, or a generated Maven project."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tools.stack import StackError
from tools.stack.jars import (
    MARKER,
    broker_classpath,
    cache_dir,
    cached_libs,
    render_pom,
)

NS = "{http://maven.apache.org/POM/4.0.0}"


def _no_progress(message: str) -> None:
    raise AssertionError(f"nothing should be fetched, got: {message}")


def test_pom_is_a_pom_project_with_the_broker_and_a_logging_binding() -> None:
    root = ET.fromstring(render_pom("4.1.1"))
    assert root.findtext(f"{NS}packaging") == "pom"
    deps = {
        d.findtext(f"{NS}artifactId"): d.findtext(f"{NS}version")
        for d in root.iter(f"{NS}dependency")
    }
    assert deps["kafka_2.13"] == "4.1.1"
    assert deps["log4j-slf4j-impl"] == deps["log4j-core"] == deps["log4j-api"]
    assert deps["slf4j-api"] == "1.7.36"


def test_cache_counts_only_when_marked_complete(tmp_path: Path) -> None:
    folder = cache_dir(tmp_path, "4.1.1")
    (folder / "libs").mkdir(parents=True)
    assert cached_libs(tmp_path, "4.1.1") is None
    (folder / MARKER).write_text("4.1.1\n")
    assert cached_libs(tmp_path, "4.1.1") == folder / "libs"
    assert cached_libs(tmp_path, "4.2.0") is None


async def test_complete_cache_skips_the_fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    folder = cache_dir(tmp_path, "4.1.1")
    (folder / "libs").mkdir(parents=True)
    (folder / MARKER).write_text("4.1.1\n")
    assert await broker_classpath(tmp_path, "4.1.1", _no_progress) == f"{folder / 'libs'}/*"


async def test_kafka_home_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    libs = tmp_path / "kafka" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-4.1.1.jar").touch()
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path / "kafka"))
    assert await broker_classpath(tmp_path, "4.1.1", _no_progress) == f"{libs}/*"


async def test_kafka_home_without_jars_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    with pytest.raises(StackError, match="does not look like a Kafka install"):
        await broker_classpath(tmp_path, "4.1.1", _no_progress)
