"""Killing the triggerer while 20 AMC sensors are deferred loses nothing and duplicates nothing.

A real Airflow stack (``airflow_stack``) runs ``amc_restart_fanout`` (``restart_dags/``): one task
creates 20 AMC executions in this module's emulator, then 20 deferrable ``AmcExecutionSensor``
tasks wait for them in the triggerer and write the execution rows into a table of their own in the
Postgres database ``test``.

The executions are scripted to run far longer than the test (``RUNNING_SECONDS`` emulator
seconds), so none can end by itself: the test

1. triggers the DAG through the REST API and waits until all 20 sensors are ``deferred`` and the
   triggerer has started all 20 triggers (one trigger log file per sensor carrying its job id);
2. SIGKILLs the triggerer's process group (and any descendant that left it), starts a new
   triggerer with the stack's environment and hands it to the harness (so ``wait_for_run`` watches
   it); a finalizer stops it before the stack's teardown (which would also stop it);
3. waits until the new triggerer has taken over every trigger (the dead one's heartbeat goes
   stale after ``[triggerer] triggerer_health_check_threshold``, lowered here to
   ``HEALTH_CHECK_THRESHOLD``) and started it, then fast-forwards the emulator clock so the
   executions succeed.

The checks: the run and every sensor succeed on their first try; the emulator saw exactly 20
create calls (none after the kill) and polls of every execution after the kill; every execution has
its row (``completed``, ``row_count`` = the emulator's result summary); and each sensor has trigger
logs from both triggerer jobs, the new one with the fired event.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
import pytest
from airflow_stack import AirflowStack, AirflowStackError, StackSpec, poll
from psycopg import sql
from psycopg.rows import dict_row

from airflow_env import PG_TEST_DSN, amc_connection_env, postgres_connection_env
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Must match restart_dags/amc_restart_fanout.py (the tests count the sensors they find, so a
# mismatch fails loudly rather than silently checking fewer).
DAG_ID = "amc_restart_fanout"
SENSOR_COUNT = 20
SUBMIT = "submit"
SENSOR_PREFIX = "wait_"

RUNNING_SECONDS = 600  # emulator seconds: no execution can end before the clock is advanced
HEALTH_CHECK_THRESHOLD = 6  # seconds without heartbeat before a triggerer's triggers are reassigned
PHASE_TIMEOUT = 90.0
RUN_TIMEOUT = 120.0
CREATE_PATH = re.compile(rf"^/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions/?$")
TRIGGER_LOG_JOB = re.compile(r"\.log\.trigger\.(\d+)\.log$")
RESTART_MARKER = f"===== restarted by {__name__} ====="


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def restart_emulator() -> Iterator[EmulatorServer]:
    """This module's emulator: executions stay RUNNING until the test advances the clock."""
    with EmulatorServer(seed=0, speed=1.0) as server:
        server.admin.script("*", pending_seconds=1, running_seconds=RUNNING_SECONDS)
        server.admin.config(concurrency_limit=SENSOR_COUNT)  # all 20 run at once (default 10)
        yield server


@pytest.fixture(scope="module")
def restart_table() -> Iterator[str]:
    """A unique execution table in the ``test`` database, dropped after the module."""
    name = f"amc_restart_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def _stack_env(fixture: Any) -> dict[str, str]:
    return {
        **amc_connection_env(fixture("restart_emulator").url),
        **postgres_connection_env(dsn=PG_TEST_DSN),
        "AMC_RESTART_TABLE": fixture("restart_table"),
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD),
    }


AIRFLOW_STACK = StackSpec(
    dags_folder=Path(__file__).parent / "restart_dags", expect_dags=(DAG_ID,), env=_stack_env
)


# ---- restarting one service (what AirflowStack has no public method for) -------------------------
def start_service(stack: AirflowStack, service: str) -> subprocess.Popen[bytes]:
    """Start ``airflow <service>`` again with the stack's environment, appending to its log file.

    The new process replaces the old one in the stack's process table, so the stack's liveness
    checks watch it and its teardown (SIGTERM to the group, then SIGKILL) stops it.
    """
    return stack.start_process(service, service, banner=RESTART_MARKER)


def stop_service(proc: subprocess.Popen[bytes], grace_period: float = 10.0) -> int | None:
    """SIGTERM the process group, SIGKILL it after ``grace_period``; return the exit code.

    Used on the restarted triggerer before the stack's own teardown, which SIGTERMs every service
    at once: in that case the restarted triggerer sometimes waited past the 10 s grace period for
    its trigger-runner subprocess ("Waiting for triggers to clean up") and was SIGKILLed, while
    stopped on its own it exits in about a second.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=grace_period)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
        return None


# ---- metadata / emulator views -------------------------------------------------------------------
def sensor_ids(stack: AirflowStack, run_id: str) -> list[str]:
    return sorted(t["task_id"] for t in stack.task_instances(DAG_ID, run_id) if t["task_id"] != SUBMIT)


def sensor_states(stack: AirflowStack, run_id: str) -> dict[str, str | None]:
    instances = stack.task_instances(DAG_ID, run_id)
    return {ti["task_id"]: ti["state"] for ti in instances if ti["task_id"].startswith(SENSOR_PREFIX)}


def triggerer_job_ids(stack: AirflowStack) -> list[int]:
    rows = stack.sql("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
    return [int(row[0]) for row in rows]


def trigger_owners(stack: AirflowStack) -> list[int | None]:
    """The triggerer job id each trigger row is assigned to (``None``: unassigned)."""
    return [row[0] for row in stack.sql("SELECT triggerer_id FROM trigger ORDER BY id")]


def trigger_log_jobs(stack: AirflowStack, run_id: str, task_id: str) -> dict[int, Path]:
    """The triggerer job ids that wrote a trigger log file for this task, with the file."""
    found = {}
    for path in stack.trigger_log_files(DAG_ID, run_id, task_id):
        match = TRIGGER_LOG_JOB.search(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def fired_in_restarted_triggerer(stack: AirflowStack, trigger_log: Path, task_id: str) -> bool:
    """Whether the restarted triggerer logged the fired event of ``task_id``'s trigger.

    The event line belongs in the task's trigger log file, but Airflow 3.3.2 routes a trigger's
    last lines to the triggerer's own log when it handles the trigger's "finished" message before
    reading those lines from the log channel (the per-trigger logger is gone by then); with 20
    triggers firing at once that happens now and then. So look in both places: the file, and the
    part of the triggerer's log written after the restart.
    """
    if "Trigger fired event" in trigger_log.read_text(errors="replace"):
        return True
    _, marker, after_restart = stack.read_log("triggerer").partition(RESTART_MARKER)
    task = re.compile(rf"\btask_id={re.escape(task_id)}\b")
    return bool(marker) and any(
        "Trigger fired event" in line and task.search(line) for line in after_restart.splitlines()
    )


def create_calls(emulator: EmulatorServer, since: int = 0) -> list[dict[str, Any]]:
    return [
        entry
        for entry in emulator.admin.requests(since)
        if entry["method"] == "POST" and CREATE_PATH.search(entry["path"])
    ]


def polled_execution_ids(emulator: EmulatorServer, since: int) -> set[str]:
    """Executions read with a successful GET after request ``since``."""
    prefix = f"/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions/"
    return {
        entry["path"].removeprefix(prefix).strip("/")
        for entry in emulator.admin.requests(since)
        if entry["method"] == "GET" and entry["path"].startswith(prefix) and entry["status"] == 200
    }


def last_seq(emulator: EmulatorServer) -> int:
    return max((entry["seq"] for entry in emulator.admin.requests()), default=0)


def wait_for(check: Any, what: str, stack: AirflowStack, run_id: str) -> Any:
    """``poll`` with the sensors' states in the error (and an early stop when one failed)."""

    def guarded() -> Any:
        states = sensor_states(stack, run_id)
        broken = {task: state for task, state in states.items() if state in {"failed", "up_for_retry"}}
        if broken:
            raise AirflowStackError(f"sensors failed while waiting for {what}: {broken}")
        return check()

    try:
        return poll(guarded, timeout=PHASE_TIMEOUT, interval=0.5, what=what)
    except AirflowStackError as exc:
        raise AirflowStackError(f"{exc}; sensor states {sensor_states(stack, run_id)}") from exc


# ---- the scenario --------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestartOutcome:
    run_id: str
    state: str
    old_job: int
    new_job: int
    old_pid: int
    new_pid: int
    kill_seq: int
    """Emulator request-log bookmark taken right before the kill."""
    timings: dict[str, float]


@pytest.fixture(scope="module")
def restart(
    airflow_stack: AirflowStack, restart_emulator: EmulatorServer, request: pytest.FixtureRequest
) -> RestartOutcome:
    """Run the DAG, kill the triggerer while all sensors are deferred, restart it, finish the run."""
    stack, emulator = airflow_stack, restart_emulator
    timings: dict[str, float] = {}
    started = time.monotonic()

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 1)

    stack.unpause(DAG_ID)
    run_id = stack.trigger_dag(DAG_ID)

    def all_deferred() -> bool | None:
        states = sensor_states(stack, run_id)
        return True if len(states) == SENSOR_COUNT and set(states.values()) == {"deferred"} else None

    wait_for(all_deferred, f"all {SENSOR_COUNT} sensors to be deferred", stack, run_id)
    lap("all deferred")

    [old_job] = triggerer_job_ids(stack)
    sensors = sensor_ids(stack, run_id)

    def old_triggerer_runs_all() -> bool | None:
        owned = trigger_owners(stack) == [old_job] * SENSOR_COUNT
        logged = all(old_job in trigger_log_jobs(stack, run_id, task) for task in sensors)
        return True if owned and logged else None

    wait_for(old_triggerer_runs_all, "the first triggerer to start every trigger", stack, run_id)
    lap("old triggerer running all")

    execution_ids = stack.xcom(DAG_ID, run_id, SUBMIT)
    for execution_id in execution_ids:  # nothing can have ended yet: the restart matters
        found = emulator.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]
        assert found["status"] == "RUNNING", found

    kill_seq = last_seq(emulator)
    old_pid = stack.kill_process("triggerer")  # SIGKILL: its group and every descendant
    new_proc = start_service(stack, "triggerer")
    request.addfinalizer(lambda: stop_service(new_proc))  # before the stack's teardown
    lap("kill and respawn")

    def new_triggerer_runs_all() -> int | None:
        newer = [job for job in triggerer_job_ids(stack) if job > old_job]
        if not newer or trigger_owners(stack) != [newer[-1]] * SENSOR_COUNT:
            return None
        logged = all(newer[-1] in trigger_log_jobs(stack, run_id, task) for task in sensors)
        return newer[-1] if logged else None

    new_job = wait_for(new_triggerer_runs_all, "the new triggerer to take over every trigger", stack, run_id)
    lap("new triggerer running all")

    emulator.admin.advance(RUNNING_SECONDS)
    state = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    lap("run finished")
    print(f"\ntriggerer restart timings (s): {timings}")  # shown with -s / -rP
    return RestartOutcome(run_id, state, old_job, new_job, old_pid, new_proc.pid, kill_seq, timings)


# ---- the checks ----------------------------------------------------------------------------------
def test_every_sensor_succeeds_on_its_first_try(airflow_stack: AirflowStack, restart: RestartOutcome) -> None:
    instances = airflow_stack.task_instances(DAG_ID, restart.run_id)
    assert restart.state == "success", {ti["task_id"]: ti["state"] for ti in instances}
    assert len(instances) == SENSOR_COUNT + 1
    assert {(ti["task_id"], ti["state"], ti["try_number"]) for ti in instances} == {
        (ti["task_id"], "success", 1) for ti in instances
    }
    for task_id in sensor_ids(airflow_stack, restart.run_id):
        events = airflow_stack.deferral_evidence(DAG_ID, restart.run_id, task_id).events
        assert "deferred" in events and events[-1] == "success", (task_id, events)


def test_each_execution_was_created_once_and_recorded(
    airflow_stack: AirflowStack, restart_emulator: EmulatorServer, restart: RestartOutcome, restart_table: str
) -> None:
    execution_ids = airflow_stack.xcom(DAG_ID, restart.run_id, SUBMIT)
    assert len(set(execution_ids)) == SENSOR_COUNT, execution_ids

    calls = create_calls(restart_emulator)
    assert len(calls) == SENSOR_COUNT, [call["body"] for call in calls]
    assert {call["status"] for call in calls} == {200}
    assert create_calls(restart_emulator, restart.kill_seq) == []

    query = sql.SQL("SELECT * FROM {} ORDER BY execution_id").format(sql.Identifier(restart_table))
    with psycopg.connect(PG_TEST_DSN, row_factory=dict_row) as conn:
        rows = {row["execution_id"]: row for row in conn.execute(query).fetchall()}
    assert set(rows) == set(execution_ids)

    outputs = {
        output["execution_id"]: output
        for output in (
            airflow_stack.xcom(DAG_ID, restart.run_id, task_id)
            for task_id in sensor_ids(airflow_stack, restart.run_id)
        )
    }
    assert set(outputs) == set(execution_ids)
    for execution_id, row in rows.items():
        summary = restart_emulator.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
        assert summary["status"] == "SUCCEEDED"
        assert (row["status"], row["amc_status"]) == ("completed", "SUCCEEDED"), row
        assert (row["row_count"], row["size_bytes"]) == (summary["rows"], summary["bytes"]), execution_id
        assert row["completed_at"] is not None
        assert outputs[execution_id]["row_count"] == summary["rows"]
    # the windows differ, so the counts are not all the same value copied around
    assert len({row["row_count"] for row in rows.values()}) > 1


def test_the_new_triggerer_took_over_every_trigger(
    airflow_stack: AirflowStack, restart_emulator: EmulatorServer, restart: RestartOutcome
) -> None:
    assert restart.new_job > restart.old_job
    assert restart.new_pid != restart.old_pid and not psutil.pid_exists(restart.old_pid)
    # The restarted triggerer is the one the stack watches, and it is alive.
    assert airflow_stack._procs["triggerer"].pid == restart.new_pid
    assert airflow_stack._procs["triggerer"].poll() is None

    for task_id in sensor_ids(airflow_stack, restart.run_id):
        logs = trigger_log_jobs(airflow_stack, restart.run_id, task_id)
        assert set(logs) == {restart.old_job, restart.new_job}, (task_id, sorted(logs))
        assert fired_in_restarted_triggerer(airflow_stack, logs[restart.new_job], task_id), (
            task_id,
            logs[restart.new_job].read_text(errors="replace")[-2000:],
        )
        assert "Trigger fired event" not in logs[restart.old_job].read_text(errors="replace")

    # Every execution was polled again after the kill (by the only triggerer left alive).
    execution_ids = set(airflow_stack.xcom(DAG_ID, restart.run_id, SUBMIT))
    assert execution_ids <= polled_execution_ids(restart_emulator, restart.kill_seq)
