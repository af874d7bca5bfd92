"""The bench's CPU readings: parsing ``/proc``, whole process trees, windows cut from samples."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tools.bench import cpu
from tools.bench.children import descendants
from tools.bench.cpu import TICK_S, CpuCost, Reading, Window
from tools.bench.report import format_grid

#: Burns ``seconds`` of its own CPU time (not wall time), so the amount is known however busy
#: the machine is.
BURN = "import time\nt = time.process_time()\nwhile time.process_time() - t < {seconds}: pass\n"

#: A parent whose first child burned 0.3 s and was waited for, and whose second burned 0.3 s
#: and lives on; the parent itself only sleeps.
TREE = f"""
import subprocess, sys, time
burn = {BURN.format(seconds=0.3)!r}
subprocess.run([sys.executable, "-c", burn], check=True)
alive = subprocess.Popen([sys.executable, "-c", burn + "time.sleep(60)"])
time.sleep(0.1)
while True:
    fields = open(f"/proc/{{alive.pid}}/stat").read().rpartition(")")[2].split()
    if int(fields[11]) + int(fields[12]) >= 0.3 * {1 / TICK_S}:
        break
    time.sleep(0.05)
print("ready", flush=True)
time.sleep(60)
"""


@pytest.fixture
def tree() -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process
    finally:
        for pid in descendants(process.pid):
            subprocess.run(["kill", "-9", str(pid)], check=False)
        process.kill()
        process.wait()


def test_a_stat_line_is_read_after_the_name_whatever_the_name_holds() -> None:
    fields = ["S", *["0"] * 10, "150", "50", "30", "20", *["0"] * 30]
    own, reaped = cpu.stat_times("4242 (a (b) c) " + " ".join(fields))
    assert own == pytest.approx(200 * TICK_S)
    assert reaped == pytest.approx(50 * TICK_S)


def test_the_machine_is_busy_outside_idle_iowait_and_steal() -> None:
    text = "cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n"
    assert cpu.machine_busy_s(text) == pytest.approx(160 * TICK_S)


def test_a_tree_counts_its_live_descendants_and_the_ones_it_waited_for(
    tree: subprocess.Popen[str],
) -> None:
    spent = cpu.tree_cpu_s(tree.pid)
    assert spent is not None
    assert spent >= 0.6 - 2 * TICK_S
    own, _ = cpu.stat_times(Path(f"/proc/{tree.pid}/stat").read_text())
    assert own < 0.3, "the parent itself only slept"


def test_a_process_that_is_gone_has_no_reading() -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    assert cpu.tree_cpu_s(finished.pid) is None


class Reaping:
    """A stand-in for ``/proc`` in which ``child`` is reaped by ``parent`` just as it is about
    to be read: its time moves into the parent's account and it is gone (the race a real
    reader meets when a replay's worker ends)."""

    def __init__(self, times: dict[int, tuple[float, float]], parent: int, child: int) -> None:
        self.times, self.parent, self.child = times, parent, child

    def read(self, pid: int) -> tuple[float, float] | None:
        if pid == self.child and pid in self.times:
            own, waited = self.times[self.parent]
            self.times[self.parent] = (own, waited + sum(self.times.pop(pid)))
        return self.times.get(pid)

    def below(self, pid: int, *, every_thread: bool = True) -> list[int]:
        return [p for p in self.times if p == self.child and pid == self.parent]


def test_a_child_reaped_while_its_tree_is_read_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proc = Reaping({1: (1.0, 0.5), 2: (3.0, 0.0)}, parent=1, child=2)
    monkeypatch.setattr(cpu, "_times", proc.read)
    monkeypatch.setattr(cpu, "descendants", proc.below)
    assert cpu.tree_cpu_s(1) == pytest.approx(4.5)


def test_a_command_the_bench_reaps_while_it_reads_is_not_lost(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    bench = os.getpid()
    proc = Reaping({bench: (0.5, 0.0), 7: (2.0, 0.0)}, parent=bench, child=7)
    monkeypatch.setattr(cpu, "_times", proc.read)
    monkeypatch.setattr(cpu, "descendants", lambda pid, every_thread=True: [])
    got = cpu.read(0.0, {cpu.COMMANDS: 7})
    assert got.commands_s + got.parts.get(cpu.COMMANDS, 0.0) == pytest.approx(2.0)
    assert got.parts[cpu.BENCH] == pytest.approx(0.5)


def reading(at: float, machine: float, parts: dict[str, float], commands: float = 0.0) -> Reading:
    return Reading(at, machine, commands, parts)


def test_a_window_is_interpolated_between_the_samples_around_it() -> None:
    samples = [reading(0.0, 0.0, {"a": 0.0}), reading(2.0, 2.0, {"a": 4.0, "b": 1.0}, 1.0)]
    middle = cpu.interpolate(samples, 1.0)
    assert middle == reading(1.0, 1.0, {"a": 2.0}, 0.5), "b was not running at the start"
    assert cpu.interpolate(samples, 2.0) is samples[1]
    assert cpu.interpolate(samples, -0.1) is None
    assert cpu.interpolate(samples, 2.1) is None


def test_the_cost_is_per_event_and_counts_only_parts_read_at_both_ends() -> None:
    start = reading(10.0, 100.0, {"bench": 1.0, "projector": 5.0, "intake": 2.0})
    end = reading(12.0, 101.5, {"bench": 1.1, "projector": 6.0, "feed": 0.2})
    spent = cpu.cost(start, end, 1_000)
    assert spent is not None
    assert spent.machine_us == pytest.approx(1_500)
    assert spent.parts_us == pytest.approx({"bench": 100, "projector": 1_000})
    assert spent.other_us == pytest.approx(400)
    assert spent.machine_cores == pytest.approx(0.75)
    waited = cpu.cost(start, reading(12.0, 101.5, {}, commands=0.5), 1_000)
    assert waited is not None
    assert waited.parts_us == {"commands": pytest.approx(500)}
    # A command read while it runs, and another that ended in the window, are both commands.
    both = cpu.cost(
        reading(10.0, 100.0, {"commands": 3.0}),
        reading(12.0, 101.5, {"commands": 3.8}, commands=0.2),
        1_000,
    )
    assert both is not None
    assert both.parts_us == {"commands": pytest.approx(1_000)}
    assert cpu.cost(start, end, 0) is None
    assert cpu.cost(end, start, 1_000) is None


def test_the_table_shows_every_part_in_order_and_what_was_not_read() -> None:
    costs = {Window.PROJECTION: CpuCost(30_000, 10.0, 500.0, {"projector": 330.0, "Kafka": 180.4})}
    (line,) = cpu.cells(costs)
    assert line[:4] == ("projection", "30,000", "1.50 cores", "500")
    by_column = dict(zip(cpu.HEADER, line, strict=True))
    assert by_column["projector"] == "330"
    assert by_column["Kafka"] == "180"
    assert by_column["intake"] == "-"
    assert by_column["other"] == "-10", "a reading between ticks may overshoot; it is shown"
    assert format_grid(cpu.HEADER, [line]).splitlines()[0].startswith("measurement  events")
    assert cpu.to_json(costs)["projection"]["parts_us"] == {"projector": 330.0, "Kafka": 180.4}


async def test_the_sampler_cuts_a_burning_process_out_of_its_samples() -> None:
    script = "input()\n" + BURN.format(seconds=0.5) + "import time\ntime.sleep(60)"
    burner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, stdin=asyncio.subprocess.PIPE
    )
    sampler = cpu.Sampler(lambda: {"burner": burner.pid})
    loop = asyncio.get_running_loop()
    try:
        sampler.start()
        await asyncio.sleep(0.5)  # started, and sampled at least once
        before = cpu.tree_cpu_s(burner.pid) or 0.0
        start = loop.time()
        assert burner.stdin is not None
        burner.stdin.write(b"\n")
        await burner.stdin.drain()
        await burned(burner.pid, before + 0.5 - TICK_S)
        spent = sampler.between(start, loop.time(), 1_000)
    finally:
        await sampler.stop()
        burner.kill()
        await burner.wait()
    assert before < 0.3, "it waited for its input before burning"
    assert spent is not None
    assert spent.parts_us["burner"] >= 400, "at least 0.4 of its 0.5 s fell in the window"
    assert [s.at for s in sampler.samples] == sorted(s.at for s in sampler.samples)


async def burned(pid: int, seconds: float) -> None:
    """Until ``pid`` has used ``seconds`` of CPU (there is no event to wait for in /proc)."""
    for _ in range(600):
        if (cpu.tree_cpu_s(pid) or 0.0) >= seconds:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{pid} did not burn {seconds} s of CPU in 30 s")
