"""The execution flow end to end, without a scheduler: the emulator over real HTTP + a real Postgres.

submit (operator) -> sensor defers -> the trigger runs to its event (``asyncio.run``) ->
``execute_complete`` measures the output and writes the row; compared with the emulator's own
result summary. Each test has its own table in the ``test`` database, dropped afterwards.
"""

from __future__ import annotations

import json

from airflow_env import (
    PG_TEST_DSN,
    FakeTaskInstance,
    InMemoryTaskStateStore,
    amc_connection_env,
    apply_airflow_test_env,
    postgres_connection_env,
    task_context,
)

apply_airflow_test_env()

import asyncio  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException, AirflowRescheduleException, TaskDeferred  # noqa: E402
from airflow.sdk.module_loading import import_string  # noqa: E402
from airflow.triggers.base import TriggerEvent  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID  # noqa: E402
from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.results import MANIFEST_NAME  # noqa: E402
from airflow_provider_amc.sensors.amc import AmcExecutionSensor  # noqa: E402
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger  # noqa: E402

pytestmark = pytest.mark.integration

PG_CONN_ID = "amc_flow_pg"
CREATE_PATH = rf"^/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions$"
#: Emulator seconds. Long enough to be PENDING at the first check whatever the sub-second phase
#: (the emulator stores createTime truncated to the second); tests then advance its clock.
FAST = {"pending_seconds": 5, "running_seconds": 5}


@pytest.fixture
def amc(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """The reset emulator with fast lifecycles, and the Airflow connections pointing at it."""
    for name, value in {**amc_connection_env(emulator.url), **postgres_connection_env(PG_CONN_ID)}.items():
        monkeypatch.setenv(name, value)
    emulator.admin.script(DEMO_WORKFLOW_ID, **FAST)
    return emulator


@pytest.fixture
def table() -> Iterator[str]:
    name = f"amc_flow_{uuid.uuid4().hex[:12]}"
    yield name
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def row_of(table: str, execution_id: str) -> dict[str, Any]:
    """The execution row, read directly (independent of the code under test)."""
    with psycopg.connect(PG_TEST_DSN, row_factory=dict_row) as conn:
        query = sql.SQL("SELECT * FROM {} WHERE execution_id = %s").format(sql.Identifier(table))
        rows = conn.execute(query, (execution_id,)).fetchall()
    assert len(rows) == 1, f"expected one row for {execution_id}, got {rows}"
    return rows[0]


def submit_operator(table: str, **kwargs: Any) -> AmcCreateExecutionOperator:
    kwargs.setdefault("time_window_start", "2026-03-01")
    kwargs.setdefault("time_window_end", "2026-03-08")
    kwargs.setdefault("time_window_time_zone", "America/New_York")
    kwargs.setdefault("parameter_values", {"min_impressions": 1})
    return AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id=DEMO_WORKFLOW_ID,
        postgres_conn_id=PG_CONN_ID,
        table=table,
        **kwargs,
    )


def wait_sensor(table: str, execution_id: str, **kwargs: Any) -> AmcExecutionSensor:
    kwargs.setdefault("poke_interval", 0.05)
    kwargs.setdefault("timeout", 60)
    return AmcExecutionSensor(
        task_id="wait", execution_id=execution_id, postgres_conn_id=PG_CONN_ID, table=table, **kwargs
    )


def first_event(trigger: AmcExecutionTrigger) -> TriggerEvent:
    async def collect() -> TriggerEvent:
        async for event in trigger.run():
            return event
        raise AssertionError("the trigger ended without an event")

    return asyncio.run(collect())


def finish_soon(amc: EmulatorServer, delay: float = 0.2) -> threading.Timer:
    """Fast-forward the emulator past the scripted lifecycle after ``delay`` real seconds."""
    timer = threading.Timer(delay, amc.admin.advance, (60,))
    timer.start()
    return timer


def defer_and_complete(
    amc: EmulatorServer, sensor: AmcExecutionSensor, ti: FakeTaskInstance
) -> dict[str, Any]:
    """The deferrable path as Airflow drives it: execute -> TaskDeferred -> trigger -> execute_complete."""
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context(ti))
    assert deferred.value.method_name == "execute_complete"
    trigger = deferred.value.trigger
    path, kwargs = trigger.serialize()
    rebuilt = import_string(path)(**kwargs)  # what the triggerer does
    timer = finish_soon(amc)
    event = first_event(rebuilt)  # polls PENDING until the clock jumps, then the terminal status
    timer.join()
    return getattr(sensor, deferred.value.method_name)(task_context(ti), event.payload)


def submit(table: str, ti: FakeTaskInstance | None = None, **kwargs: Any) -> str:
    execution_id = submit_operator(table, **kwargs).execute(task_context(ti or FakeTaskInstance()))
    assert isinstance(execution_id, str)
    return execution_id


# ---- success: the row matches the emulator's own summary -------------------------------------------
RESULT_CASES = {
    "csv-single": ("CSV", {"rows": 40, "parts": 1}),
    "csv-multi": ("CSV", {"rows": 40, "parts": 3}),
    "csv-empty": ("CSV", {"rows": 0}),
    "parquet-multi": ("PARQUET", {"rows": 25, "parts": 3}),
    "parquet-empty": ("PARQUET", {"rows": 0}),
}


@pytest.mark.parametrize("case", RESULT_CASES.values(), ids=RESULT_CASES.keys())
def test_deferred_flow_records_the_output(
    case: tuple[str, dict[str, int]], amc: EmulatorServer, table: str
) -> None:
    output_format, script = case
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST, **script)
    submit_ti, wait_ti = FakeTaskInstance(task_id="submit"), FakeTaskInstance(task_id="wait")
    execution_id = submit(table, submit_ti, output_format=output_format)
    assert submit_ti.pushed[0] == ("amc_execution_id", execution_id)
    submitted = row_of(table, execution_id)
    assert submitted["status"] == "pending"
    assert submitted["task_id"] == "submit"

    metadata = defer_and_complete(amc, wait_sensor(table, execution_id), wait_ti)

    summary = amc.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
    assert summary["status"] == "SUCCEEDED"
    assert summary["rows"] == script["rows"]
    row = row_of(table, execution_id)
    execution = amc.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]
    assert row["status"] == "completed"
    assert row["amc_status"] == "SUCCEEDED"
    assert row["row_count"] == summary["rows"]
    assert row["size_bytes"] == summary["bytes"]
    assert row["output_location"] == execution["outputS3URI"]
    assert row["output_format"] == output_format
    assert row["completed_at"] is not None
    assert [c["name"] for c in row["output_columns"]] == [c["name"] for c in summary["columns"]]
    # The submitter's columns survive the sensor's update.
    assert (row["task_id"], row["time_window_start"], row["time_window_end"]) == (
        "submit",
        "2026-03-01T00:00:00",
        "2026-03-08T00:00:00",
    )
    assert row["parameter_values"] == {"min_impressions": 1}
    assert len(metadata["files"]) == summary["parts"]
    assert (metadata["row_count"], metadata["size_bytes"]) == (summary["rows"], summary["bytes"])
    assert wait_ti.pushed_value("amc_output") == metadata


# ---- failure and rejection -----------------------------------------------------------------------
@pytest.mark.parametrize("outcome", ["FAILED", "REJECTED"])
def test_unsuccessful_execution_fails_the_task_and_records_the_reason(
    outcome: str, amc: EmulatorServer, table: str
) -> None:
    reason = f"Scripted {outcome.lower()}: column spend overflowed"
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST, outcome=outcome, status_reason=reason)
    execution_id = submit(table)
    with pytest.raises(AirflowFailException, match=reason):
        defer_and_complete(amc, wait_sensor(table, execution_id), FakeTaskInstance())
    row = row_of(table, execution_id)
    assert (row["status"], row["amc_status"], row["status_reason"]) == ("failed", outcome, reason)
    assert row["row_count"] is None


# ---- at-most-once submission ------------------------------------------------------------------------
def test_retry_reattaches_and_a_try_after_the_end_submits_once(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, pending_seconds=30, running_seconds=30)
    store = InMemoryTaskStateStore()

    def attempt(try_number: int) -> str:
        ti = FakeTaskInstance(try_number=try_number)
        execution_id = submit_operator(table).execute(task_context(ti, task_state_store=store))
        assert ti.pushed[0] == ("amc_execution_id", execution_id)
        return str(execution_id)

    first = attempt(1)
    assert attempt(2) == first
    assert amc.admin.count("POST", CREATE_PATH) == 1
    assert row_of(table, first)["try_number"] == 1  # the owner recorded at submission is never reassigned

    amc.admin.advance(120)  # the earlier execution is now SUCCEEDED
    third = attempt(3)
    assert third != first
    assert amc.admin.count("POST", CREATE_PATH) == 2
    assert attempt(4) == third
    assert amc.admin.count("POST", CREATE_PATH) == 2


def test_changed_request_is_not_reattached(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, pending_seconds=30, running_seconds=30)
    store = InMemoryTaskStateStore()
    first = submit_operator(table).execute(task_context(task_state_store=store))
    second = submit_operator(table, time_window_end="2026-03-09").execute(
        task_context(task_state_store=store)
    )
    assert first != second
    assert amc.admin.count("POST", CREATE_PATH) == 2


# ---- cancellation ---------------------------------------------------------------------------------------
def emulator_status(amc: EmulatorServer, execution_id: str) -> str:
    return str(amc.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]["status"])


def test_operator_on_kill_cancels(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, pending_seconds=30, running_seconds=30)
    operator = submit_operator(table)
    execution_id = operator.execute(task_context())
    operator.on_kill()
    assert emulator_status(amc, execution_id) == "CANCELLED"


def test_sensor_on_kill_cancels(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, pending_seconds=30, running_seconds=30)
    execution_id = submit(table)
    sensor = wait_sensor(table, execution_id)
    with pytest.raises(TaskDeferred):
        sensor.execute(task_context())
    sensor.on_kill()
    assert emulator_status(amc, execution_id) == "CANCELLED"


def test_trigger_on_kill_cancels_and_the_wait_then_fails(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, pending_seconds=30, running_seconds=30)
    execution_id = submit(table)
    trigger = AmcExecutionTrigger(
        execution_id=execution_id,
        instance_id=DEFAULT_INSTANCE_ID,
        poll_interval=0.05,
        end_time=time.time() + 30,
    )
    asyncio.run(trigger.on_kill())
    assert emulator_status(amc, execution_id) == "CANCELLED"
    event = first_event(trigger)
    assert (event.payload["status"], event.payload["amc_status"]) == ("failed", "CANCELLED")


# ---- poke and reschedule reach the same row ------------------------------------------------------------
def run_reschedule(sensor: AmcExecutionSensor, ti: FakeTaskInstance) -> dict[str, Any]:
    """Reschedule mode as the scheduler drives it: re-run ``execute`` after every reschedule."""
    for _ in range(200):
        try:
            return sensor.execute(task_context(ti))  # type: ignore[no-any-return]
        except AirflowRescheduleException:
            time.sleep(0.05)
    raise AssertionError("the sensor never finished")


@pytest.mark.parametrize("mode", ["poke", "reschedule"])
def test_sync_modes_record_the_same_row(mode: str, amc: EmulatorServer, table: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST, rows=12, parts=2)
    execution_id = submit(table)
    ti = FakeTaskInstance()
    sensor = wait_sensor(table, execution_id, deferrable=False, mode=mode)
    timer = finish_soon(amc)
    metadata = sensor.execute(task_context(ti)) if mode == "poke" else run_reschedule(sensor, ti)
    timer.join()
    summary = amc.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
    row = row_of(table, execution_id)
    assert (row["status"], row["row_count"], row["size_bytes"]) == ("completed", 12, summary["bytes"])
    assert metadata["row_count"] == 12
    assert ti.pushed_value("amc_output") == metadata


# ---- output_path ---------------------------------------------------------------------------------------
def test_output_path_receives_the_files(amc: EmulatorServer, table: str, tmp_path: Path) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST, rows=30, parts=3)
    execution_id = submit(table)
    target = tmp_path / "out"
    metadata = defer_and_complete(
        amc, wait_sensor(table, execution_id, output_path=str(target)), FakeTaskInstance()
    )
    summary = amc.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
    assert [f.name for f in target.iterdir()] == [execution_id]  # one folder per execution
    folder = target / execution_id
    files = sorted(f for f in folder.iterdir() if f.name != MANIFEST_NAME)
    assert sorted(f.name for f in folder.iterdir()) == sorted([MANIFEST_NAME, *(f.name for f in files)])
    assert [f.name for f in files] == [f"part-{i:05d}.csv" for i in range(3)]
    assert [f.stat().st_size for f in files] == summary["part_bytes"]
    assert [sum(1 for _ in f.open("rb")) - 1 for f in files] == summary["part_rows"]  # no quoted newlines
    row = row_of(table, execution_id)
    assert row["output_location"] == metadata["output_location"]
    assert Path(row["output_location"].removeprefix("file://")).resolve() == folder.resolve()
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    assert manifest["execution_id"] == execution_id
    assert [(f["name"], f["size_bytes"], f["row_count"]) for f in manifest["files"]] == list(
        zip([f.name for f in files], summary["part_bytes"], summary["part_rows"], strict=True)
    )


# ---- create-and-wait in one task ---------------------------------------------------------------------------
def test_operator_wait_for_completion_records_the_output(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST, rows=9, parts=1)
    ti = FakeTaskInstance()
    operator = submit_operator(table, wait_for_completion=True, poll_interval=0.05, wait_timeout=60)
    with pytest.raises(TaskDeferred) as deferred:
        operator.execute(task_context(ti))
    execution_id = ti.pushed_value("amc_execution_id")
    finish_soon(amc).join()
    metadata = operator.execute_complete(task_context(ti), first_event(deferred.value.trigger).payload)
    assert metadata["execution_id"] == execution_id
    assert row_of(table, execution_id)["row_count"] == 9
