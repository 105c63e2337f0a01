"""Peak memory of AmcToPostgresOperator loading a large AMC result into Postgres.

The emulator runs in a child process (so its memory is not counted); this process creates a
scripted execution of ``--rows`` rows in ``--parts`` parts, loads it with the operator (download
-> COPY, streamed) and reports rows, bytes, seconds and peak RSS (``resource.getrusage``).

    .venv/bin/python bench/bench_load_memory.py --rows 8000000       # ~0.6 GB of CSV
    .venv/bin/python bench/bench_load_memory.py --rows 1000000 --format PARQUET

Needs Postgres on 127.0.0.1:5432 (database ``test``, or ``--dsn``). The table is dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql

from airflow_provider_amc.client import CreateExecutionRequest
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import AdminClient
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def start_emulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_amc.emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if "listening on" not in line:
        process.kill()
        raise RuntimeError(f"emulator did not start: {line!r}")
    return process, line.rsplit(" ", 1)[-1].strip()


def connect_airflow(url: str, dsn: str) -> None:
    os.environ["AIRFLOW_CONN_AMC_DEFAULT"] = json.dumps(defaults.airflow_connection(url))
    os.environ["AIRFLOW_CONN_BENCH_PG"] = dsn


class CountingHook(AmcHook):
    """Counts the bytes downloaded (the size of the result)."""

    downloaded = 0

    def iter_download(self, url: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        for chunk in super().iter_download(url, chunk_size=chunk_size):
            CountingHook.downloaded += len(chunk)
            yield chunk


def run(rows: int, parts: int, output_format: str, dsn: str) -> dict[str, Any]:
    emulator, url = start_emulator()
    table = f"bench_load_{uuid.uuid4().hex[:8]}"
    try:
        connect_airflow(url, dsn)
        admin = AdminClient(url)
        admin.script(defaults.DEMO_WORKFLOW_ID, rows=rows, parts=parts, pending_seconds=0, running_seconds=1)
        request = CreateExecutionRequest(
            workflow_id=defaults.DEMO_WORKFLOW_ID,
            time_window_type="MOST_RECENT_WEEK",
            output_format=output_format,
        )
        execution_id = AmcHook().create_execution(request).workflow_execution_id
        admin.advance(10)
        operator = AmcToPostgresOperator(
            task_id="bench", execution_id=execution_id, table=table, postgres_conn_id="bench_pg"
        )
        operator.hook = CountingHook()  # type: ignore[misc]  # replaces the cached_property
        before = peak_rss_mib()
        started = time.perf_counter()
        result = operator.execute({})  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        return {
            "rows": result["rows"],
            "format": output_format,
            "parts": parts,
            "bytes": CountingHook.downloaded,
            "seconds": round(seconds, 1),
            "peak_rss_mib_before": round(before, 1),
            "peak_rss_mib_after": round(peak_rss_mib(), 1),
        }
    finally:
        emulator.terminate()
        emulator.wait(10)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=8_000_000)
    parser.add_argument("--parts", type=int, default=5)
    parser.add_argument("--format", default="CSV", choices=("CSV", "PARQUET"))
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    print(json.dumps(run(args.rows, args.parts, args.format, args.dsn)))


if __name__ == "__main__":
    main()
