"""``AmcExecutionSensor(start_from_trigger=True)`` in real Airflow: no worker try before the trigger.

A real stack (scheduler, dag-processor, triggerer, LocalExecutor; ``airflow_stack``) runs the two
DAGs of ``trigstart_dags/`` against this module's emulator:

* ``amc_start_from_trigger``: ``submit`` creates an execution; ``wait`` (``execution_id=submit.output``)
  is deferred by the scheduler itself, the triggerer renders the id from ``submit``'s XCom and polls
  that execution, and the worker only runs ``execute_complete``: XCom and execution row are right.
* ``amc_start_from_trigger_bad_id``: the rendered id is invalid: the task fails on its first try with
  the field named, and AMC never sees a request for it.
* ``amc_start_from_trigger_mapped``: a mapped sensor (``.partial(start_from_trigger=True).expand``)
  over two mapped creates: Airflow 3.3 cannot start mapped tasks in the triggerer, so each map
  index runs worker first and then defers, and both end with their own execution.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from airflow_stack import AirflowStack, StackSpec
from psycopg import sql
from psycopg.rows import dict_row

from airflow_env import PG_TEST_DSN, amc_connection_env, postgres_connection_env
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DAG_ID = "amc_start_from_trigger"
BAD_DAG_ID = "amc_start_from_trigger_bad_id"
MAPPED_DAG_ID = "amc_start_from_trigger_mapped"
RUN_TIMEOUT = 90.0
#: The sensor's worker-side check logs this (``AmcExecutionSensor.poke``); the trigger never does.
WORKER_POKE_LINE = "AMC execution {} is "


@pytest.fixture(scope="module")
def trigstart_emulator() -> Iterator[EmulatorServer]:
    with EmulatorServer(seed=0, speed=1.0) as server:
        server.admin.script("*", pending_seconds=1, running_seconds=30)
        yield server


@pytest.fixture(scope="module")
def trigstart_table() -> Iterator[str]:
    name = f"amc_trigstart_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def _stack_env(fixture: Any) -> dict[str, str]:
    return {
        **amc_connection_env(fixture("trigstart_emulator").url),
        **postgres_connection_env(dsn=PG_TEST_DSN),
        "AMC_TRIGSTART_TABLE": fixture("trigstart_table"),
    }


AIRFLOW_STACK = StackSpec(
    dags_folder=Path(__file__).parent / "trigstart_dags",
    expect_dags=(DAG_ID, BAD_DAG_ID, MAPPED_DAG_ID),
    env=_stack_env,
)


def run_dag(stack: AirflowStack, dag_id: str) -> tuple[str, str]:
    stack.unpause(dag_id)
    run_id = stack.trigger_dag(dag_id)
    try:
        return run_id, stack.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
    except Exception:
        print("TRIGGERER LOG", stack.read_log("triggerer")[-20000:])
        print("TASK LOG", stack.task_log(dag_id, run_id, "wait"))
        raise


def history(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> list[dict[str, Any]]:
    """Every try the metadata database knows of for one task instance (history + current)."""
    query = """
        SELECT try_number, state, next_method FROM task_instance_history
         WHERE dag_id = %s AND run_id = %s AND task_id = %s
        UNION ALL
        SELECT try_number, state, next_method FROM task_instance
         WHERE dag_id = %s AND run_id = %s AND task_id = %s
        ORDER BY 1"""
    rows = stack.sql(query, (dag_id, run_id, task_id) * 2)
    return [{"try_number": r[0], "state": r[1], "next_method": r[2]} for r in rows]


@pytest.fixture(scope="module")
def good_run(airflow_stack: AirflowStack) -> tuple[str, str]:
    return run_dag(airflow_stack, DAG_ID)


@pytest.fixture(scope="module")
def bad_run(airflow_stack: AirflowStack) -> tuple[str, str]:
    return run_dag(airflow_stack, BAD_DAG_ID)


def log_lines(stack: AirflowStack, dag_id: str, run_id: str) -> list[str]:
    return stack.task_log(dag_id, run_id, "wait").splitlines()


def first_index(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


def test_the_sensor_started_in_the_triggerer_without_a_worker_try(
    airflow_stack: AirflowStack, good_run: tuple[str, str]
) -> None:
    run_id, state = good_run
    states = {
        ti["task_id"]: (ti["state"], ti["try_number"]) for ti in airflow_stack.task_instances(DAG_ID, run_id)
    }
    assert (state, states) == ("success", {"submit": ("success", 1), "wait": ("success", 1)})
    # One try in the metadata database, and one worker run in the audit log: no "running" before a
    # "deferred" (a worker-started deferrable sensor logs running, deferred, running, success).
    assert [row["try_number"] for row in history(airflow_stack, DAG_ID, run_id, "wait")] == [1]
    assert airflow_stack.task_events(DAG_ID, run_id, "wait") == ["running", "success"]
    # The triggerer built the trigger with the DAG to render its templates ...
    assert "Start from trigger enabled for task wait" in airflow_stack.read_log("triggerer")
    # ... and the try's log starts with the trigger; the only worker process (one startup) ran
    # after the trigger fired, and it never ran the worker-side check (poke).
    lines = log_lines(airflow_stack, DAG_ID, run_id)
    execution_id = airflow_stack.xcom(DAG_ID, run_id, "submit")
    worker_lines = [i for i, line in enumerate(lines) if line == "Worker startup parse complete"]
    assert len(worker_lines) == 1, lines
    assert first_index(lines, "trigger ") < first_index(lines, "Trigger fired event") < worker_lines[0], lines
    polled = [line for line in lines if line.startswith(f"AMC execution {execution_id} is ")]
    assert polled and all("next poll in" in line for line in polled), lines  # trigger lines only


def test_the_trigger_polled_the_execution_rendered_from_the_xcom(
    airflow_stack: AirflowStack,
    trigstart_emulator: EmulatorServer,
    good_run: tuple[str, str],
    trigstart_table: str,
) -> None:
    run_id, _ = good_run
    execution_id = airflow_stack.xcom(DAG_ID, run_id, "submit")
    path = f"/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions/{execution_id}"
    gets = [
        r
        for r in trigstart_emulator.admin.requests()
        if r["method"] == "GET" and r["path"].rstrip("/") == path
    ]
    assert gets, "the emulator was never asked for the execution"

    output = airflow_stack.xcom(DAG_ID, run_id, "wait")
    summary = trigstart_emulator.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
    assert (output["execution_id"], output["status"]) == (execution_id, "completed")
    assert (output["row_count"], output["size_bytes"]) == (summary["rows"], summary["bytes"])
    query = sql.SQL("SELECT * FROM {} WHERE execution_id = %s").format(sql.Identifier(trigstart_table))
    with psycopg.connect(PG_TEST_DSN, row_factory=dict_row) as conn:
        [row] = conn.execute(query, (execution_id,)).fetchall()
    assert (row["status"], row["amc_status"], row["row_count"]) == ("completed", "SUCCEEDED", summary["rows"])
    assert (row["dag_id"], row["run_id"]) == (DAG_ID, run_id), row  # submitted by this run


def test_a_bad_rendered_execution_id_fails_clearly_without_calling_amc(
    airflow_stack: AirflowStack, trigstart_emulator: EmulatorServer, bad_run: tuple[str, str]
) -> None:
    run_id, state = bad_run
    ti = airflow_stack.task_instance(BAD_DAG_ID, run_id, "wait")
    assert (state, ti["state"], ti["try_number"]) == ("failed", "failed", 1)
    log = airflow_stack.task_log(BAD_DAG_ID, run_id, "wait")
    assert "Invalid AmcExecutionSensor input: execution_id '../not an id' is not a valid AMC id" in log, log
    assert "not an id" not in " ".join(r["path"] for r in trigstart_emulator.admin.requests())


def test_a_mapped_sensor_with_start_from_trigger_runs_worker_first_and_succeeds(
    airflow_stack: AirflowStack, trigstart_emulator: EmulatorServer
) -> None:
    run_id, state = run_dag(airflow_stack, MAPPED_DAG_ID)
    tis = airflow_stack.sql(
        "SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s "
        "ORDER BY task_id, map_index",
        (MAPPED_DAG_ID, run_id),
    )
    assert (state, [tuple(ti) for ti in tis]) == (
        "success",
        [
            ("submit", 0, "success", 1),
            ("submit", 1, "success", 1),
            ("wait", 0, "success", 1),
            ("wait", 1, "success", 1),
        ],
    )
    # Worker first (the fallback), then deferred, then the worker again: for both map indexes.
    events = airflow_stack.task_events(MAPPED_DAG_ID, run_id, "wait")
    assert events.count("deferred") == 2 and events.count("success") == 2, events
    # Each map index waited for its own execution: the wait's XCom names its submit's execution.
    xcoms = airflow_stack.sql(
        "SELECT task_id, map_index, value FROM xcom"
        " WHERE dag_id = %s AND run_id = %s AND key = 'return_value'",
        (MAPPED_DAG_ID, run_id),
    )
    values = {(task_id, index): value for task_id, index, value in xcoms}  # jsonb: decoded already
    submitted = [values[("submit", index)] for index in (0, 1)]
    assert len(set(submitted)) == 2, values
    assert [values[("wait", index)]["execution_id"] for index in (0, 1)] == submitted, values
    for execution_id in submitted:
        summary = trigstart_emulator.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
        assert values[("wait", submitted.index(execution_id))]["row_count"] == summary["rows"]
