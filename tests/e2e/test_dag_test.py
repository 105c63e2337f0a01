"""A whole DAG run with ``dag.test()`` (submit -> deferrable sensor) against the emulator and Postgres.

``dag.test()`` runs the tasks and the trigger in-process, so it runs in a subprocess with its own
throw-away ``AIRFLOW_HOME`` (SQLite metadata DB migrated once per session); Airflow settings never
leak into this pytest process. XComs are read from that SQLite DB, the row from Postgres.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.rows import dict_row

from airflow_env import (
    PG_TEST_DSN,
    airflow_test_env,
    amc_connection_env,
    connection_var,
    postgres_connection_env,
)
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID
from airflow_provider_amc.emulator.testing import EmulatorRequestLog, EmulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DAGS = Path(__file__).parent / "dagtest_dags"
DAG_FILE = DAGS / "amc_dagtest.py"
PG_CONN_ID = "amc_dagtest_pg"


def base_env(home: Path) -> dict[str, str]:
    """This process's environment without any Airflow setting, plus the test Airflow home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    return {**env, **airflow_test_env(home, DAGS)}


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("airflow-home")
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env=base_env(home),
        check=True,
        capture_output=True,
        timeout=120,
    )
    return home


@pytest.fixture
def table() -> Iterator[str]:
    name = f"amc_dagtest_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def xcoms(home: Path, dag_id: str) -> dict[tuple[str, str], Any]:
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT task_id, key, value FROM xcom WHERE dag_id = ?", (dag_id,)).fetchall()
    return {(task_id, key): json.loads(value) for task_id, key, value in rows}


def test_dag_test_runs_submit_and_deferred_sensor(
    airflow_home: Path,
    amc_emulator: EmulatorServer,
    amc_connection: str,
    amc_request_log: EmulatorRequestLog,
    table: str,
) -> None:
    """Uses the provider's pytest plugin: this test's own emulator, connection and request log."""
    emulator = amc_emulator
    emulator.admin.script(DEMO_WORKFLOW_ID, pending_seconds=1, running_seconds=1, rows=21, parts=2)
    env = {
        **base_env(airflow_home),
        connection_var(amc_connection): os.environ[connection_var(amc_connection)],
        **postgres_connection_env(PG_CONN_ID),
        "AMC_DAGTEST_TABLE": table,
        "AMC_DAGTEST_PG_CONN_ID": PG_CONN_ID,
    }
    result = subprocess.run(
        [sys.executable, str(DAG_FILE)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]

    values = xcoms(airflow_home, "amc_dagtest")
    execution_id = values[("submit", "return_value")]
    assert values[("submit", "amc_execution_id")] == execution_id
    output = values[("wait", "return_value")]
    assert output == values[("wait", "amc_output")]
    summary = emulator.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
    assert summary["status"] == "SUCCEEDED"
    assert (output["execution_id"], output["row_count"], output["size_bytes"]) == (
        execution_id,
        21,
        summary["bytes"],
    )
    assert amc_request_log.count("POST", r"/workflowExecutions$") == 1

    with psycopg.connect(PG_TEST_DSN, row_factory=dict_row) as conn:
        query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))
        rows = conn.execute(query).fetchall()
    assert len(rows) == 1
    row = rows[0]
    assert row["execution_id"] == execution_id
    assert (row["status"], row["row_count"], row["size_bytes"]) == ("completed", 21, summary["bytes"])
    assert row["output_location"] == output["output_location"] == summary_uri(emulator, execution_id)
    assert (row["dag_id"], row["task_id"]) == ("amc_dagtest", "submit")
    assert row["parameter_values"] == {"min_impressions": "1"}
    # One local day of the Berlin data interval (2026-03-09, the run for logical date 2026-03-10 12:00 UTC
    # ends at the latest Berlin midnight before it).
    assert row["time_window_time_zone"] == "Europe/Berlin"
    start, end = (datetime.fromisoformat(row[f"time_window_{k}"]) for k in ("start", "end"))
    assert (end - start).days == 1
    assert row["time_window_start"].endswith("T00:00:00")


def summary_uri(emulator: EmulatorServer, execution_id: str) -> str:
    return str(emulator.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]["outputS3URI"])


def test_two_fakes_two_dag_tests_in_one_process(airflow_home: Path, table: str) -> None:
    """Issue 14, the user's case: each run starts its own fake on its own port; the second run's
    trigger must poll the second fake at once (no connection settings kept from the first run)."""
    env = {
        **base_env(airflow_home),
        **postgres_connection_env(PG_CONN_ID),
        "AMC_DAGTEST_TABLE": table,
        "AMC_DAGTEST_PG_CONN_ID": PG_CONN_ID,
    }
    result = subprocess.run(
        [sys.executable, str(DAGS / "amc_two_fakes.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    runs = [
        json.loads(line.split(" ", 1)[1])
        for line in result.stdout.splitlines()
        if line.startswith("AMC_RUN ")
    ]
    assert len(runs) == 2, result.stdout[-4000:] + result.stderr[-4000:]
    assert runs[0]["url"] != runs[1]["url"]
    for run in runs:
        assert run["state"] == "success", (runs, result.stdout[-4000:])
        assert run["creates"] == 1, runs
        assert run["polls"] >= 1, runs  # this run's fake saw the status polls (worker and trigger)
        assert run["seconds"] < 45, runs  # the old 60 s settings cache made run 2 poll a dead host


def test_dag_test_waits_for_the_data_lag_then_submits_once(airflow_home: Path) -> None:
    """Real Airflow drives the deferral: DateTimeTrigger until window end + min_data_age, then resume."""
    with EmulatorServer(seed=0, speed=1.0) as emulator:  # its clock is real time: createTime is comparable
        data_lag_run(airflow_home, emulator)


def data_lag_run(airflow_home: Path, emulator: EmulatorServer) -> None:
    # dag.test() needs several seconds (more on a loaded machine) before the task runs: the data
    # must still be too recent then, so the window ends 25 s from now and needs to be 5 s old.
    end = (datetime.now(UTC) + timedelta(seconds=25)).replace(microsecond=0)
    lag = 5
    env = {
        **base_env(airflow_home),
        **amc_connection_env(emulator.url),
        "AMC_LAG_END": end.strftime("%Y-%m-%dT%H:%M:%S"),
        "AMC_LAG_SECONDS": str(lag),
    }
    result = subprocess.run(
        [sys.executable, str(DAGS / "amc_data_lag.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "waiting until then" in output  # the operator deferred ...
    assert "DateTimeTrigger" in output  # ... to the standard DateTimeTrigger

    calls = [
        e
        for e in emulator.admin.requests()
        if e["method"] == "POST" and e["path"].endswith("/workflowExecutions")
    ]
    assert [call["status"] for call in calls] == [200]  # exactly one create, after the wait
    execution_id = xcoms(airflow_home, "amc_data_lag")[("submit", "return_value")]
    execution = emulator.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]
    created = datetime.fromisoformat(execution["createTime"].replace("Z", "+00:00"))
    assert created >= end + timedelta(seconds=lag - 1)  # createTime is truncated to the second
