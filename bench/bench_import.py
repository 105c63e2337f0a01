"""Benchmark 5: import cost of the operators and sensor on top of an already imported ``airflow.sdk``.

Runs ``python -X importtime -c "import airflow.sdk; import airflow_provider_amc.operators.amc,
airflow_provider_amc.sensors.amc"`` (median of ``--runs``) and attributes every module first
imported after ``airflow.sdk`` to our import. Usage::

    python bench/bench_import.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import time

import _common  # noqa: F401 - sets AIRFLOW_HOME before Airflow is imported
from _common import PYTHON, print_table, verdict

CODE = "import airflow.sdk; import airflow_provider_amc.operators.amc, airflow_provider_amc.sensors.amc"
LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def one_run() -> tuple[float, float, list[tuple[int, int, str]]]:
    """(µs for airflow.sdk, µs for ours, [(self µs, cumulative µs, module)] imported after airflow.sdk)."""
    out = subprocess.run(
        [PYTHON, "-X", "importtime", "-c", CODE],
        capture_output=True,
        text=True,
        check=True,
        env=os.environ.copy(),
    ).stderr
    entries = [(int(m[1]), int(m[2]), len(m[3]), m[4]) for m in LINE.finditer(out)]
    sdk_index = next(i for i, e in enumerate(entries) if e[3] == "airflow.sdk" and e[2] == 1)
    sdk_total = sum(e[0] for e in entries[: sdk_index + 1])
    ours = entries[sdk_index + 1 :]
    return sdk_total, sum(e[0] for e in ours), [(e[0], e[1], e[3]) for e in ours]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = sorted((one_run() for _ in range(args.runs)), key=lambda r: r[1])
    sdk_us, ours_us, modules = runs[len(runs) // 2]
    start = time.perf_counter()
    subprocess.run([PYTHON, "-c", CODE], check=True, env=os.environ.copy())
    wall = time.perf_counter() - start
    top_level = {}
    for self_us, _, name in modules:  # group by top-level package
        root = name.split(".")[0] if not name.startswith("airflow.") else ".".join(name.split(".")[:3])
        top_level[root] = top_level.get(root, 0) + self_us
    heaviest = sorted(top_level.items(), key=lambda kv: -kv[1])[:12]
    print_table(
        f"Import cost (median of {args.runs} runs of python -X importtime)",
        ["metric", "ours", "comparison (airflow.sdk itself)", "ratio", "target", "met?"],
        [
            [
                "import after airflow.sdk",
                f"{ours_us / 1000:.0f} ms",
                f"{sdk_us / 1000:.0f} ms",
                f"{ours_us / sdk_us:.2f}",
                "< 150 ms",
                verdict(ours_us < 150_000),
            ]
        ],
    )
    print(
        f"(wall time of the whole `python -c` incl. interpreter start: {wall:.2f} s; "
        f"{len(modules)} modules imported after airflow.sdk)"
    )
    print_table(
        "Heaviest packages our import pulls in beyond airflow.sdk (self time, summed)",
        ["package", "ms"],
        [[name, f"{us / 1000:.1f}"] for name, us in heaviest],
    )


if __name__ == "__main__":
    main()
