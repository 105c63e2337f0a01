"""Benchmark 4: loading 1M result rows into Postgres, our COPY path vs ``PostgresHook.insert_rows``.

The rows are a real emulator result part (``--seed-rows`` rows) repeated up to ``--rows``. Ours:
``airflow_provider_amc.transfers.postgres_load.load_execution`` (the AmcToPostgresOperator's COPY
path: parse with the result reader, verify the counts, ``COPY`` re-quoted values), once into a new
table (created in the load's transaction: ``COPY ... FREEZE``, index built after) and once again
into the existing table (DELETE of the execution's rows + COPY). Comparison:
``PostgresHook.insert_rows`` (defaults) of the same rows parsed with ``csv.reader`` into an
identical table (same columns, same index on ``(amc_execution_id, amc_instance_id)``; constant
defaults instead of the ``current_setting`` ones).
Database ``test`` on 127.0.0.1:5432.
Usage::

    python bench/bench_postgres_load.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import time
from collections.abc import Iterator

import _common  # noqa: F401 - sets AIRFLOW_HOME before Airflow is imported
from _common import Emulator, print_table, verdict

DSN = "postgresql://postgres@127.0.0.1:5432/test"
OURS, THEIRS = "bench_amc_copy", "bench_amc_insert_rows"


def emulator_result(rows: int) -> tuple[bytes, list[dict[str, str]]]:
    """One real CSV part with ``rows`` rows and the execution's outputColumns."""
    import requests

    from airflow_provider_amc.client import CreateExecutionRequest
    from airflow_provider_amc.hooks.amc import AmcHook

    with Emulator(speed=1.0) as emulator:
        emulator.admin.script("demo_campaign_report", pending_seconds=0, running_seconds=1, rows=rows)
        hook = AmcHook()
        eid = hook.create_execution(
            CreateExecutionRequest(workflow_id="demo_campaign_report")
        ).workflow_execution_id
        emulator.admin.advance(5)
        execution = hook.get_execution(eid)
        url = hook.get_download_urls(eid).download_urls[0]
        body = requests.get(url, timeout=300).content
        hook.close()
    columns = [
        c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in execution.output_columns or []
    ]
    return body, columns


def repeat_rows(seed: bytes, rows: int) -> bytes:
    header, data = seed.split(b"\n", 1)
    lines = data.splitlines(keepends=True)
    out = [header + b"\n"]
    while rows > 0:
        out.extend(lines[:rows])
        rows -= len(lines)
    return b"".join(out)


def chunks(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def load_ours(data: bytes, output_columns: list[dict[str, str]]) -> tuple[float, int]:
    import psycopg

    from airflow_provider_amc.transfers.postgres_load import load_execution
    from airflow_provider_amc.transfers.postgres_types import table_columns

    columns = table_columns(output_columns)
    with psycopg.connect(DSN) as conn:
        start = time.perf_counter()
        loaded = load_execution(
            conn,
            ("public", OURS),
            columns,
            "bench-execution",
            [("part-00000.csv", chunks(data))],
            instance_id="bench-instance",
        )
        return time.perf_counter() - start, loaded


def load_insert_rows(data: bytes, output_columns: list[dict[str, str]]) -> tuple[float, int]:
    import psycopg
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from airflow_provider_amc.transfers.postgres_load import create_table_sql
    from airflow_provider_amc.transfers.postgres_types import (
        EXECUTION_ID_COLUMN,
        INSTANCE_ID_COLUMN,
        table_columns,
    )

    with psycopg.connect(DSN, autocommit=True) as conn:  # the same table, constant provider columns
        conn.execute(create_table_sql(("public", THEIRS), table_columns(output_columns)))
        conn.execute(f"ALTER TABLE {THEIRS} ALTER COLUMN {EXECUTION_ID_COLUMN} SET DEFAULT 'bench-execution'")
        conn.execute(f"ALTER TABLE {THEIRS} ALTER COLUMN {INSTANCE_ID_COLUMN} SET DEFAULT 'bench-instance'")
        conn.execute(f"CREATE INDEX ON {THEIRS} ({EXECUTION_ID_COLUMN}, {INSTANCE_ID_COLUMN})")  # as ours
    reader = csv.reader(io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline=""))
    fields = next(reader)
    rows = ([value if value != "" else None for value in row] for row in reader)
    os.environ["AIRFLOW_CONN_PG_BENCH"] = DSN
    hook = PostgresHook(postgres_conn_id="pg_bench")
    start = time.perf_counter()
    hook.insert_rows(THEIRS, rows, target_fields=fields)
    elapsed = time.perf_counter() - start
    with psycopg.connect(DSN) as conn:
        count = conn.execute(f"SELECT count(*) FROM {THEIRS}").fetchone()[0]
    return elapsed, count


def drop_tables() -> None:
    import psycopg

    with psycopg.connect(DSN, autocommit=True) as conn:
        for table in (OURS, THEIRS):
            conn.execute(f"DROP TABLE IF EXISTS {table}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seed-rows", type=int, default=100_000)
    args = parser.parse_args()
    seed, output_columns = emulator_result(args.seed_rows)
    data = repeat_rows(seed, args.rows)
    drop_tables()
    try:
        ours_s, ours_rows = load_ours(data, output_columns)  # new table: COPY FREEZE, index after
        again_s, again_rows = load_ours(data, output_columns)  # existing table: DELETE + COPY
        theirs_s, theirs_rows = load_insert_rows(data, output_columns)
    finally:
        drop_tables()
    print_table(
        f"Load {args.rows:,} rows ({len(data) / 1e6:.0f} MB CSV) into Postgres",
        ["path", "rows loaded", "seconds", "rows/s"],
        [
            ["ours: load_execution, new table", ours_rows, f"{ours_s:.2f}", f"{ours_rows / ours_s:,.0f}"],
            [
                "ours: load_execution, reload (existing table)",
                again_rows,
                f"{again_s:.2f}",
                f"{again_rows / again_s:,.0f}",
            ],
            ["PostgresHook.insert_rows", theirs_rows, f"{theirs_s:.2f}", f"{theirs_rows / theirs_s:,.0f}"],
        ],
    )
    ratio = theirs_s / ours_s
    print_table(
        "Target",
        ["metric", "ours", "insert_rows", "ratio", "target", "met?"],
        [
            [
                "seconds for the load",
                f"{ours_s:.2f}",
                f"{theirs_s:.2f}",
                f"{ratio:.1f}x faster",
                ">= 10x",
                verdict(ratio >= 10 and ours_rows == theirs_rows == args.rows),
            ],
            [
                "seconds for a reload (existing table)",
                f"{again_s:.2f}",
                f"{theirs_s:.2f}",
                f"{theirs_s / again_s:.1f}x faster",
                ">= 10x",
                verdict(theirs_s / again_s >= 10 and again_rows == args.rows),
            ],
        ],
    )


if __name__ == "__main__":
    main()
