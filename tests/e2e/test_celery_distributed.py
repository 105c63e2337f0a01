"""Beyond one machine: CeleryExecutor, two Celery workers, two triggerers; one of each killed with -9.

A real Airflow stack (``airflow_stack``) runs with the CeleryExecutor (broker: the Redis server on
127.0.0.1:6379, in a database and queue of this module's own, so parallel runs do not meet; result
backend: the stack's metadata database). Next to the stack's triggerer a second one runs, and two
Celery workers serve the queue. ``amc_celery_fanout`` (``celery_dags/``) maps one
``AmcCreateExecutionOperator(wait_for_completion=True)`` over 40 (instance, day) pairs on two
emulator instances: each task creates its execution and waits for it deferred in a triggerer.

The executions run far longer than the test until the emulator clock is advanced, so while all 40
tasks wait the test ``kill -9``s the triggerer holding more triggers and one Celery worker, waits
until the surviving triggerer runs every trigger and has polled every execution again (the
handover time, from the kill, is printed), watches the polls for a few seconds (none polled faster
than one trigger polls: no execution polled by two triggerers), then lets the executions succeed.

Checks: every task succeeds on its first try; exactly 40 creates in the emulator's request log (20
per instance, none after the kills); 40 rows in the execution table, each ``completed`` with the
emulator's row count.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import Counter
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
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, SECOND_INSTANCE_ID
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Must match celery_dags/amc_celery_fanout.py.
DAG_ID = "amc_celery_fanout"
TASK_ID = "run"
TASKS = 40
INSTANCES = (DEFAULT_INSTANCE_ID, SECOND_INSTANCE_ID)

RUNNING_SECONDS = 900  # emulator seconds: no execution ends before the clock is advanced
HEALTH_CHECK_THRESHOLD = 6  # seconds without heartbeat before a triggerer's triggers are reassigned
POLL_INTERVAL = 2  # the DAG's poll_interval
OBSERVE_SECONDS = 10.0  # polls watched after the handover settled
PHASE_TIMEOUT = 150.0
RUN_TIMEOUT = 150.0
#: This module's own broker database and queue: parallel test runs on the machine do not meet.
REDIS_DB = 1 + secrets.randbelow(15)
QUEUE = f"amc_e2e_{secrets.token_hex(4)}"
CREATE_PATH = re.compile(r"^/amc/reporting/([^/]+)/workflowExecutions/?$")
STATUS_PATH = re.compile(r"^/amc/reporting/([^/]+)/workflowExecutions/([^/?]+)$")
TRIGGER_LOG_JOB = re.compile(r"\.log\.trigger\.(\d+)\.log$")
WORKERS = ("celery-worker-1", "celery-worker-2")
SECOND_TRIGGERER = "triggerer-2"


# ---- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def celery_emulator() -> Iterator[EmulatorServer]:
    """This module's emulator: every execution stays RUNNING until the test advances the clock."""
    with EmulatorServer(seed=0, speed=1.0) as server:
        server.admin.script("*", pending_seconds=1, running_seconds=RUNNING_SECONDS)
        server.admin.config(concurrency_limit=TASKS)  # all run at once (default 10 per instance)
        yield server


@pytest.fixture(scope="module")
def celery_table() -> Iterator[str]:
    name = f"amc_celery_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def _stack_env(fixture: Any) -> dict[str, str]:
    return {
        **amc_connection_env(fixture("celery_emulator").url),
        **postgres_connection_env(dsn=PG_TEST_DSN),
        "AMC_CELERY_TABLE": fixture("celery_table"),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__PARALLELISM": "16",
        "AIRFLOW__CELERY__BROKER_URL": f"redis://127.0.0.1:6379/{REDIS_DB}",
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": QUEUE,
        "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": str(HEALTH_CHECK_THRESHOLD),
    }


AIRFLOW_STACK = StackSpec(
    dags_folder=Path(__file__).parent / "celery_dags", expect_dags=(DAG_ID,), env=_stack_env
)


# ---- views of the metadata database, the logs and the emulator ------------------------------------
def triggerer_jobs(stack: AirflowStack) -> list[int]:
    return [
        int(row[0]) for row in stack.sql("SELECT id FROM job WHERE job_type = 'TriggererJob' ORDER BY id")
    ]


def trigger_owners(stack: AirflowStack) -> Counter[int | None]:
    return Counter(row[0] for row in stack.sql("SELECT triggerer_id FROM trigger"))


def task_instances(stack: AirflowStack, run_id: str) -> dict[int, tuple[str | None, int]]:
    """map index -> (state, try number), read from the metadata database (the REST API shares the
    one api-server with 40 task processes and two triggerers: under load it answers late)."""
    rows = stack.sql(
        "SELECT map_index, state, try_number FROM task_instance WHERE dag_id = %s AND run_id = %s "
        "AND task_id = %s",
        (DAG_ID, run_id, TASK_ID),
    )
    return {int(index): (state, int(try_number)) for index, state, try_number in rows}


def task_states(stack: AirflowStack, run_id: str) -> dict[int, str | None]:
    return {index: state for index, (state, _) in task_instances(stack, run_id).items()}


def trigger_log_jobs(stack: AirflowStack, run_id: str) -> dict[int, set[int]]:
    """map index -> the triggerer job ids that wrote a trigger log for it."""
    folder = stack.home / "logs" / f"dag_id={DAG_ID}" / f"run_id={run_id}" / f"task_id={TASK_ID}"
    found: dict[int, set[int]] = {}
    for path in folder.glob("map_index=*/attempt=*.log.trigger.*.log"):
        match = TRIGGER_LOG_JOB.search(path.name)
        if match:
            index = int(path.parent.name.removeprefix("map_index="))
            found.setdefault(index, set()).add(int(match.group(1)))
    return found


def create_calls(emulator: EmulatorServer, since: int = 0) -> list[dict[str, Any]]:
    return [
        entry
        for entry in emulator.admin.requests(since)
        if entry["method"] == "POST"
        and CREATE_PATH.search(entry["path"])
        and not (entry.get("body") or {}).get("dryRun")
    ]


def polls(emulator: EmulatorServer, since: int) -> Counter[str]:
    """Successful status reads per execution id after request ``since``."""
    found: Counter[str] = Counter()
    for entry in emulator.admin.requests(since):
        match = STATUS_PATH.search(entry["path"])
        if entry["method"] == "GET" and match and entry["status"] == 200:
            found[match.group(2)] += 1
    return found


def submitted(table: str) -> set[str]:
    """The execution ids the operators recorded at submission."""
    query = sql.SQL("SELECT execution_id FROM {}").format(sql.Identifier(table))
    with psycopg.connect(PG_TEST_DSN) as conn:
        return {row[0] for row in conn.execute(query).fetchall()}


def last_seq(emulator: EmulatorServer) -> int:
    return max((entry["seq"] for entry in emulator.admin.requests()), default=0)


def wait_for(check: Any, what: str, stack: AirflowStack, run_id: str) -> Any:
    def guarded() -> Any:
        broken = {i: s for i, s in task_states(stack, run_id).items() if s in {"failed", "up_for_retry"}}
        if broken:
            raise AirflowStackError(f"tasks failed while waiting for {what}: {broken}")
        return check()

    try:
        return poll(guarded, timeout=PHASE_TIMEOUT, interval=0.5, what=what)
    except AirflowStackError as exc:
        states = Counter(task_states(stack, run_id).values())
        raise AirflowStackError(f"{exc}; task states {dict(states)}; owners {trigger_owners(stack)}") from exc


# ---- the scenario --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    run_id: str
    state: str
    victim_job: int
    survivor_job: int
    victim_pid: int
    split_before: dict[int | None, int]
    kill_seq: int
    handover_seconds: float
    observed: Counter[str]
    window: Counter[tuple[str, str, int]]
    """Every request of the watch window by (method, path without its last segment, status)."""
    timings: dict[str, float]


@pytest.fixture(scope="module")
def distributed(airflow_stack: AirflowStack, celery_emulator: EmulatorServer, celery_table: str) -> Outcome:
    stack, emulator, table = airflow_stack, celery_emulator, celery_table
    started = time.monotonic()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round(time.monotonic() - started - sum(timings.values()), 1)

    # The second triggerer and the two workers (log servers off: one port each per machine).
    stack.start_process(SECOND_TRIGGERER, "triggerer", "--skip-serve-logs")
    for name in WORKERS:
        stack.start_process(
            name, "celery", "worker", "--queues", QUEUE, "--concurrency", "4", "--skip-serve-logs",
            "--celery-hostname", f"{name}-{stack.stack_id}@%h", "--without-gossip", "--without-mingle",
        )  # fmt: skip
    poll(
        lambda: True if all(" ready." in stack.read_log(name) for name in WORKERS) else None,
        timeout=PHASE_TIMEOUT,
        interval=0.5,
        what="both Celery workers to be ready",
    )
    poll(
        lambda: True if len(triggerer_jobs(stack)) == 2 else None,
        timeout=PHASE_TIMEOUT,
        interval=0.5,
        what="the second triggerer to register",
    )
    first_job, second_job = triggerer_jobs(stack)  # the stack's triggerer started first
    process_of = {first_job: "triggerer", second_job: SECOND_TRIGGERER}
    lap("workers and second triggerer up")

    stack.unpause(DAG_ID)
    run_id = stack.trigger_dag(DAG_ID)

    def all_deferred_and_running() -> Counter[int | None] | None:
        states = task_states(stack, run_id)
        if len(states) != TASKS or set(states.values()) != {"deferred"}:
            return None
        owners = trigger_owners(stack)
        if sum(owners.values()) != TASKS or None in owners:
            return None
        logged = trigger_log_jobs(stack, run_id)
        return owners if len(logged) == TASKS else None

    owners = wait_for(all_deferred_and_running, f"all {TASKS} tasks deferred and running", stack, run_id)
    lap("all deferred")
    victim_job = max(owners, key=lambda job: owners[job] or 0)
    assert victim_job is not None
    survivor_job = second_job if victim_job == first_job else first_job

    kill_seq = last_seq(emulator)
    killed_at = time.monotonic()
    victim_pid = stack.kill_process(process_of[victim_job])
    stack.kill_process(WORKERS[0])

    def survivor_runs_all() -> bool | None:
        if trigger_owners(stack) != Counter({survivor_job: TASKS}):
            return None
        logged = trigger_log_jobs(stack, run_id)
        return True if all(survivor_job in logged.get(i, ()) for i in range(TASKS)) else None

    wait_for(survivor_runs_all, "the surviving triggerer to run every trigger", stack, run_id)
    executions = submitted(table)
    assert len(executions) == TASKS

    def all_polled_again() -> bool | None:
        return True if executions <= set(polls(emulator, kill_seq)) else None

    # Settled: every execution polled again since the kill (only the survivor is left to poll).
    wait_for(all_polled_again, "every execution to be polled again", stack, run_id)
    handover = round(time.monotonic() - killed_at, 1)
    lap("handover")

    settled = last_seq(emulator)
    time.sleep(OBSERVE_SECONDS)
    observed = polls(emulator, settled)
    window = Counter(
        (entry["method"], entry["path"].rsplit("/", 1)[0], entry["status"])
        for entry in emulator.admin.requests(settled)
    )
    lap("observed polls")

    emulator.admin.advance(RUNNING_SECONDS)
    state = stack.wait_for_run(DAG_ID, run_id, timeout=RUN_TIMEOUT)
    lap("run finished")
    print(
        f"\nCelery e2e: split before the kill {dict(owners)}, handover {handover}s "
        f"(health-check threshold {HEALTH_CHECK_THRESHOLD}s), timings (s) {timings}"
    )
    return Outcome(
        run_id,
        state,
        victim_job,
        survivor_job,
        victim_pid,
        dict(owners),
        kill_seq,
        handover,
        observed,
        window,
        timings,
    )


# ---- the checks ----------------------------------------------------------------------------------
def test_all_40_tasks_succeed_on_their_first_try(airflow_stack: AirflowStack, distributed: Outcome) -> None:
    instances = task_instances(airflow_stack, distributed.run_id)
    assert distributed.state == "success", Counter(state for state, _ in instances.values())
    assert sorted(instances) == list(range(TASKS))
    assert set(instances.values()) == {("success", 1)}


def test_exactly_40_creates_and_40_rows(
    celery_emulator: EmulatorServer, distributed: Outcome, celery_table: str
) -> None:
    calls = create_calls(celery_emulator)
    assert len(calls) == TASKS, [call["body"] for call in calls]
    assert {call["status"] for call in calls} == {200}
    per_instance = Counter(CREATE_PATH.search(call["path"]).group(1) for call in calls)  # type: ignore[union-attr]
    assert per_instance == Counter({instance: TASKS // 2 for instance in INSTANCES})
    assert create_calls(celery_emulator, distributed.kill_seq) == []  # nothing submitted again

    query = sql.SQL("SELECT * FROM {}").format(sql.Identifier(celery_table))
    with psycopg.connect(PG_TEST_DSN, row_factory=dict_row) as conn:
        rows = conn.execute(query).fetchall()
    assert len(rows) == TASKS
    assert len({row["execution_id"] for row in rows}) == TASKS
    assert Counter(row["instance_id"] for row in rows) == Counter({i: TASKS // 2 for i in INSTANCES})
    for row in rows:
        summary = celery_emulator.admin.result_summary(row["instance_id"], row["execution_id"])
        assert summary["status"] == "SUCCEEDED"
        assert (row["status"], row["amc_status"]) == ("completed", "SUCCEEDED"), row
        assert (row["row_count"], row["size_bytes"]) == (summary["rows"], summary["bytes"])


def test_the_surviving_triggerer_took_over_and_nothing_is_polled_twice(
    airflow_stack: AirflowStack, distributed: Outcome
) -> None:
    assert not psutil.pid_exists(distributed.victim_pid)
    # both triggerers held triggers, or the killed one held all of them: either way it held some
    assert distributed.split_before.get(distributed.victim_job, 0) >= TASKS // 2
    # After the handover settled (every execution polled again), each execution is polled at most at
    # the trigger's own pace: two triggerers polling one execution would double its count.
    assert distributed.observed, distributed.window
    assert max(distributed.observed.values()) <= OBSERVE_SECONDS / POLL_INTERVAL + 1, distributed.observed
    logged = trigger_log_jobs(airflow_stack, distributed.run_id)
    assert all(distributed.survivor_job in jobs for jobs in logged.values())
