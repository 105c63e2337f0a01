"""Shared helpers of the benchmarks: environment, the emulator process, tables.

Import this module *before* anything from Airflow: it points ``AIRFLOW_HOME`` at a temporary
directory (so a benchmark never touches a real Airflow installation) and silences Airflow's
example DAG loading.
"""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

BENCH_HOME = tempfile.mkdtemp(prefix="amc-bench-home-")
os.environ["AIRFLOW_HOME"] = BENCH_HOME
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "False")

PYTHON = sys.executable
REPO = Path(__file__).resolve().parent.parent
_URL_LINE = re.compile(r"(http://\S+)")


def amc_connection_uri(url: str) -> str:
    """The ``AIRFLOW_CONN_AMC_DEFAULT`` JSON for an emulator at ``url`` (seeded identities)."""
    from airflow_provider_amc.emulator import defaults as d

    return json.dumps(d.airflow_connection(url))


class Emulator:
    """The AMC emulator in its own process (``python -m airflow_provider_amc.emulator``)."""

    def __init__(self, speed: float = 1.0, seed: int = 0) -> None:
        self.speed = speed
        self.seed = seed
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> Emulator:
        cmd = [PYTHON, "-m", "airflow_provider_amc.emulator", "--port", "0", "--speed", str(self.speed)]
        cmd += ["--seed", str(self.seed)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        match = _URL_LINE.search(line)
        if not match:
            self.__exit__()
            raise RuntimeError(f"emulator did not announce its URL (got {line!r})")
        self.url = match.group(1)
        from airflow_provider_amc.emulator.testing import AdminClient

        self.admin = AdminClient(self.url, timeout=120)
        os.environ["AIRFLOW_CONN_AMC_DEFAULT"] = amc_connection_uri(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
            self.process = None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB), from ``VmHWM``.

    Not ``ru_maxrss``: Linux carries that over from the parent through fork + exec.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def timed() -> Iterator[list[float]]:
    """``with timed() as t: ...`` then ``t[0]`` is the wall time in seconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append(time.perf_counter() - start)


def process_start_seconds(module: str, runs: int = 3) -> float:
    """Median wall time of ``python -c "import <module>"`` (a lower bound of one task-try start)."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([PYTHON, "-c", f"import {module}"], check=True, env=os.environ.copy())
        samples.append(time.perf_counter() - start)
    return sorted(samples)[len(samples) // 2]


def verdict(met: bool) -> str:
    return "yes" if met else "**NO**"


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """A Markdown table (pasted as is into bench/README.md)."""
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    print(flush=True)
