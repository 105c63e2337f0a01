"""Execution identity (issue 16): which run owns which AMC execution, which window it covered, which
rows a load replaces. The emulator over real HTTP + a real Postgres; each scenario of the issue.

Every test has its own execution table and results table in the ``test`` database.
"""

from __future__ import annotations

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
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred  # noqa: E402
from airflow.sdk.module_loading import import_string  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from airflow_provider_amc.client import AmcServerError, CreateExecutionRequest  # noqa: E402
from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID  # noqa: E402
from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402
from airflow_provider_amc.hooks.amc import AmcHook  # noqa: E402
from airflow_provider_amc.lifecycle import Submission  # noqa: E402
from airflow_provider_amc.operators.amc import STATE_KEY, AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.sensors.amc import AmcExecutionSensor  # noqa: E402
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator  # noqa: E402

pytestmark = pytest.mark.integration

PG_CONN_ID = "amc_identity_pg"
CREATE_PATH = rf"^/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions$"
LIVE = {"pending_seconds": 600, "running_seconds": 600}
FAST = {"pending_seconds": 1, "running_seconds": 1, "rows": 12, "parts": 2}
DAY = {"time_window_start": "2026-03-01", "time_window_end": "2026-03-02"}


@pytest.fixture
def amc(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    for name, value in {**amc_connection_env(emulator.url), **postgres_connection_env(PG_CONN_ID)}.items():
        monkeypatch.setenv(name, value)
    return emulator


def drop(*names: str) -> None:
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def executions() -> Iterator[str]:
    name = f"amc_ident_exec_{uuid.uuid4().hex[:10]}"
    yield name
    drop(name)


@pytest.fixture
def results() -> Iterator[str]:
    name = f"amc_ident_rows_{uuid.uuid4().hex[:10]}"
    yield name
    drop(name)


def rows_of(table: str) -> list[dict[str, Any]]:
    """Every row of ``table``, read directly (independent of the code under test)."""
    with psycopg.connect(PG_TEST_DSN, row_factory=dict_row) as conn:
        present = conn.execute("SELECT to_regclass(%s) IS NOT NULL AS present", (table,)).fetchone()
        if not present or not present["present"]:
            return []
        return conn.execute(sql.SQL("SELECT * FROM {}").format(sql.Identifier(table))).fetchall()


def row_of(table: str, execution_id: str) -> dict[str, Any]:
    (row,) = [row for row in rows_of(table) if row["execution_id"] == execution_id]
    return row


def rows_by_execution(table: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows_of(table):
        counts[row["amc_execution_id"]] = counts.get(row["amc_execution_id"], 0) + 1
    return counts


def amc_status(amc: EmulatorServer, execution_id: str) -> str:
    return str(amc.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]["status"])


def ti_of(dag_id: str, try_number: int = 1, task_id: str = "submit") -> FakeTaskInstance:
    return FakeTaskInstance(dag_id=dag_id, run_id=f"manual__{dag_id}", task_id=task_id, try_number=try_number)


def create_operator(table: str | None, **kwargs: Any) -> AmcCreateExecutionOperator:
    for key, value in DAY.items():
        kwargs.setdefault(key, value)
    kwargs.setdefault("parameter_values", {"min_impressions": 1})
    return AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id=DEMO_WORKFLOW_ID,
        postgres_conn_id=PG_CONN_ID if table else None,
        table=table or "amc_executions",
        **kwargs,
    )


def submit(table: str | None, ti: FakeTaskInstance, store: Any = None, **kwargs: Any) -> str:
    context = task_context(ti, task_state_store=store or InMemoryTaskStateStore())
    return str(create_operator(table, **kwargs).execute(context))


def outside_execution(**fields: Any) -> str:
    """An execution started outside Airflow (the AMC console, another tool): never recorded."""
    fields.setdefault("time_window_type", "EXPLICIT")
    fields.setdefault("time_window_start", "2026-03-01T00:00:00")
    fields.setdefault("time_window_end", "2026-03-02T00:00:00")
    fields.setdefault("parameter_values", {"min_impressions": 1})
    request = CreateExecutionRequest(workflow_id=DEMO_WORKFLOW_ID, **fields)
    return AmcHook().create_execution(request, instance_id=DEFAULT_INSTANCE_ID).workflow_execution_id


def finish(
    table: str, execution_id: str, amc: EmulatorServer, ti: FakeTaskInstance | None = None
) -> dict[str, Any]:
    """The sensor (poke path) measuring a finished execution and writing its row."""
    sensor = AmcExecutionSensor(
        task_id="wait",
        execution_id=execution_id,
        postgres_conn_id=PG_CONN_ID,
        table=table,
        deferrable=False,
        poke_interval=0.05,
        timeout=30,
    )
    return dict(sensor.execute(task_context(ti or FakeTaskInstance(task_id="wait"))))


def load(execution_id: str, results: str, executions: str | None, **kwargs: Any) -> dict[str, Any]:
    operator = AmcToPostgresOperator(
        task_id="load",
        execution_id=execution_id,
        table=results,
        postgres_conn_id=PG_CONN_ID,
        executions_table=executions,
        **kwargs,
    )
    return operator.execute(task_context(FakeTaskInstance(task_id="load")))  # type: ignore[arg-type]


# ---- 16.2 ownership: a failed create never adopts another run's or an outside execution -----------------
def test_failed_create_never_adopts_another_runs_execution(amc: EmulatorServer, executions: str) -> None:
    """Two DAGs run one workflow over one window; B's create is answered 503 and AMC creates nothing."""
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    a_ti = ti_of("dag_a")
    ours = submit(executions, a_ti)
    amc.admin.fault("status", method="POST", path=CREATE_PATH, status=503, retry_after=0, count=1)
    b = create_operator(executions)
    with pytest.raises(AmcServerError):
        b.execute(task_context(ti_of("dag_b"), task_state_store=InMemoryTaskStateStore()))
    b.on_kill()  # cancel_on_kill is on by default: it must not touch A's execution
    assert amc_status(amc, ours) == "PENDING"
    (row,) = rows_of(executions)
    assert (row["execution_id"], row["dag_id"], row["run_id"]) == (ours, "dag_a", "manual__dag_a")
    assert amc.admin.count("POST", CREATE_PATH) == 2  # A's create and B's refused one


@pytest.mark.parametrize("with_table", [True, False], ids=["table", "no-table"])
@pytest.mark.parametrize("outside_format", ["CSV", "PARQUET"])
def test_failed_create_never_adopts_an_execution_started_outside_airflow(
    amc: EmulatorServer, executions: str, with_table: bool, outside_format: str
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    outside = outside_execution(output_format=outside_format)
    amc.admin.fault("status", method="POST", path=CREATE_PATH, status=503, retry_after=0, count=1)
    b = create_operator(executions if with_table else None)
    with pytest.raises(AmcServerError):
        b.execute(task_context(ti_of("dag_b"), task_state_store=InMemoryTaskStateStore()))
    b.on_kill()
    assert amc_status(amc, outside) == "PENDING"
    if with_table:
        assert [row["execution_id"] for row in rows_of(executions)] == []


def crashed_try(store: InMemoryTaskStateStore, **kwargs: Any) -> None:
    """An earlier try killed mid-submit: its marker is stored, nothing is known of its create."""
    operator = create_operator(None, **kwargs)
    submission = operator.build_submission(task_context(ti_of("dag_b")))
    store.set(
        STATE_KEY,
        {
            "instance_id": submission.instance_id,
            "fingerprint": submission.fingerprint,
            "submission": submission.as_dict(),
            "submitted_at": datetime.now(UTC).isoformat(),
            "seen_before": [],
        },
    )


@pytest.mark.parametrize(
    "other",
    [
        {"parameter_values": {"min_impressions": 2}},  # 14.7(c): other parameter values
        {"time_window_time_zone": "America/New_York"},  # the same wall times in another zone
        {"time_window_end": "2026-03-03T00:00:00"},
    ],
    ids=["parameters", "zone", "window"],
)
def test_lost_submission_lookup_never_adopts_another_request(
    amc: EmulatorServer, executions: str, other: dict[str, Any]
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    store = InMemoryTaskStateStore()
    crashed_try(store)
    stranger = outside_execution(**other)  # live, unclaimed, created after the marker
    execution_id = submit(executions, ti_of("dag_b", try_number=2), store)
    assert execution_id != stranger
    assert amc.admin.count("POST", CREATE_PATH) == 2


def test_lost_submission_lookup_excludes_executions_another_task_owns(
    amc: EmulatorServer, executions: str
) -> None:
    """B's worker died mid-submit; meanwhile DAG A submitted the same request (and recorded it).
    B's retry finds A's live execution created after its marker: A owns it, so B submits its own."""
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    store = InMemoryTaskStateStore()
    crashed_try(store)
    theirs = submit(executions, ti_of("dag_a"))
    ours = submit(executions, ti_of("dag_b", try_number=2), store)
    assert ours != theirs
    assert amc_status(amc, theirs) == "PENDING"
    assert (row_of(executions, theirs)["dag_id"], row_of(executions, ours)["dag_id"]) == ("dag_a", "dag_b")


def test_lost_submission_lookup_takes_the_same_request_in_another_zone_spelling(
    amc: EmulatorServer, executions: str
) -> None:
    """UTC and Etc/UTC are the same instants: the same request (the control of the test above)."""
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    store = InMemoryTaskStateStore()
    crashed_try(store)
    ours = outside_execution(time_window_time_zone="Etc/UTC")
    assert submit(executions, ti_of("dag_b", try_number=2), store) == ours
    assert amc.admin.count("POST", CREATE_PATH) == 1


def test_several_unclaimed_candidates_fail_naming_them(amc: EmulatorServer, executions: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    store = InMemoryTaskStateStore()
    crashed_try(store)
    first, second = outside_execution(), outside_execution()
    with pytest.raises(AirflowFailException, match="Several live AMC executions") as failed:
        submit(executions, ti_of("dag_b", try_number=2), store)
    assert first in str(failed.value) and second in str(failed.value)
    assert amc.admin.count("POST", CREATE_PATH) == 2  # nothing more submitted


def test_uncertain_relative_candidate_fails_instead_of_adopting(amc: EmulatorServer, executions: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    store = InMemoryTaskStateStore()
    relative = {"time_window_type": "MOST_RECENT_DAY", "time_window_start": None, "time_window_end": None}
    crashed_try(store, **relative)
    candidate = outside_execution(**relative)
    with pytest.raises(AirflowFailException, match="not report enough to be sure") as failed:
        submit(executions, ti_of("dag_b", try_number=2), store, **relative)
    assert candidate in str(failed.value)
    assert rows_of(executions) == []


def test_owner_is_recorded_once_and_never_reassigned(amc: EmulatorServer, executions: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    store = InMemoryTaskStateStore()
    first = submit(executions, ti_of("dag_a", try_number=1), store)
    assert submit(executions, ti_of("dag_a", try_number=2), store) == first  # reattached
    finish_ti = FakeTaskInstance(dag_id="other", run_id="other", task_id="wait")
    amc.admin.advance(1300)
    finish(executions, first, amc, finish_ti)
    row = row_of(executions, first)
    assert (row["dag_id"], row["run_id"], row["task_id"], row["try_number"]) == (
        "dag_a",
        "manual__dag_a",
        "submit",
        1,
    )


# ---- 16.5 terminal states always recorded; completed_at is AMC's ------------------------------------------
def test_cancel_during_retry_records_the_old_execution_as_cancelled(
    amc: EmulatorServer, executions: str
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    store = InMemoryTaskStateStore()
    old = submit(executions, ti_of("dag_a"), store)
    assert AmcHook().cancel_execution(old, instance_id=DEFAULT_INSTANCE_ID)  # the user, in the console
    new = submit(executions, ti_of("dag_a", try_number=2), store)
    assert new != old
    row = row_of(executions, old)
    cancelled = AmcHook().get_execution(old, instance_id=DEFAULT_INSTANCE_ID)
    assert (row["status"], row["amc_status"]) == ("failed", "CANCELLED")
    assert row["completed_at"] == datetime.fromisoformat(cancelled.last_updated_time.replace("Z", "+00:00"))
    assert row_of(executions, new)["status"] == "pending"


def test_re_measuring_keeps_amc_completion_time(amc: EmulatorServer, executions: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    execution_id = submit(executions, ti_of("dag_a"))
    amc.admin.advance(30)
    first = finish(executions, execution_id, amc)
    completed = row_of(executions, execution_id)["completed_at"]
    amc.admin.advance(3600)
    assert finish(executions, execution_id, amc) == first  # the sensor cleared and run again
    assert row_of(executions, execution_id)["completed_at"] == completed
    finished = AmcHook().get_execution(execution_id, instance_id=DEFAULT_INSTANCE_ID)
    assert completed == datetime.fromisoformat(finished.last_updated_time.replace("Z", "+00:00"))


# ---- 16.3 windows recorded as AMC ran them; 16.1 one request in any zone spelling --------------------------
def run_and_load(
    amc: EmulatorServer, executions: str, results: str, dag_id: str, **kwargs: Any
) -> tuple[str, dict[str, Any]]:
    execution_id = submit(executions, ti_of(dag_id), **kwargs)
    amc.admin.advance(30)
    metadata = finish(executions, execution_id, amc)
    load(execution_id, results, executions)
    amc.admin.advance(5)  # the next run is created later (AMC's createTime has whole seconds)
    return execution_id, metadata


def test_three_spellings_of_one_window_keep_one_copy(
    amc: EmulatorServer, executions: str, results: str
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    spellings = [
        {"time_window_start": "2026-03-01T00:00:00", "time_window_end": "2026-03-02T00:00:00"},
        {
            "time_window_start": "2026-03-01T00:00:00",
            "time_window_end": "2026-03-02T00:00:00",
            "time_window_time_zone": "Etc/UTC",
        },
        {
            "time_window_start": "2026-02-28T19:00:00",
            "time_window_end": "2026-03-01T19:00:00",
            "time_window_time_zone": "America/New_York",
        },
    ]
    ids = [
        run_and_load(amc, executions, results, f"dag_{n}", **window)[0] for n, window in enumerate(spellings)
    ]
    assert rows_by_execution(results) == {ids[-1]: 12}
    keys = {row_of(executions, execution_id)["request_key"] for execution_id in ids}
    assert len(keys) == 1 and None not in keys


def test_same_wall_times_in_another_zone_are_another_request(
    amc: EmulatorServer, executions: str, results: str
) -> None:
    """14.7(b): the replace match must not ignore the zone."""
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    utc, _ = run_and_load(amc, executions, results, "dag_utc", time_window_time_zone="UTC")
    ny, _ = run_and_load(amc, executions, results, "dag_ny", time_window_time_zone="America/New_York")
    assert rows_by_execution(results) == {utc: 12, ny: 12}


def test_two_relative_runs_of_one_day_keep_one_copy_with_bounds(
    amc: EmulatorServer, executions: str, results: str
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    relative = {"time_window_type": "MOST_RECENT_DAY", "time_window_start": None, "time_window_end": None}
    first, first_meta = run_and_load(amc, executions, results, "dag_sched", **relative)
    second, second_meta = run_and_load(amc, executions, results, "dag_manual", **relative)
    assert rows_by_execution(results) == {second: 12}
    for execution_id, metadata in ((first, first_meta), (second, second_meta)):
        row = row_of(executions, execution_id)
        amc_view = AmcHook().get_execution(execution_id, instance_id=DEFAULT_INSTANCE_ID)
        start = datetime.fromisoformat(amc_view.time_window_start.replace("Z", "+00:00"))
        end = datetime.fromisoformat(amc_view.time_window_end.replace("Z", "+00:00"))
        assert (row["window_start_utc"], row["window_end_utc"]) == (start, end)
        assert (end - start).days == 1
        assert row["time_window_type"] == "MOST_RECENT_DAY"
        assert metadata["time_window"]["start_utc"] == amc_view.time_window_start
        assert metadata["time_window"]["end_utc"] == amc_view.time_window_end


# ---- 16.4 newest wins, by AMC's creation time --------------------------------------------------------------
def test_loading_an_older_execution_after_a_newer_one_keeps_the_newer_rows(
    amc: EmulatorServer, executions: str, results: str
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    older, _ = run_and_load(amc, executions, results, "dag_sched")
    newer, _ = run_and_load(amc, executions, results, "dag_manual")
    assert rows_by_execution(results) == {newer: 12}
    with pytest.raises(AirflowFailException, match=rf"newer execution of the same request \({newer}\)"):
        load(older, results, executions)  # the scheduled run's load, re-run
    assert rows_by_execution(results) == {newer: 12}
    skipped = load(older, results, executions, on_newer_loaded="skip")
    assert skipped["skipped"] is True and skipped["rows"] == 0
    assert rows_by_execution(results) == {newer: 12}
    load(newer, results, executions)  # the newest itself reloads fine
    assert rows_by_execution(results) == {newer: 12}


def test_on_newer_loaded_is_validated_before_any_call(amc: EmulatorServer, results: str) -> None:
    with pytest.raises(AirflowFailException, match=r"on_newer_loaded 'latest'.*fail, skip"):
        load("11111111-2222-4333-8444-555555555555", results, None, on_newer_loaded="latest")
    assert amc.admin.count("GET", ".*workflowExecutions.*") == 0


# ---- 15.6 concurrent loads of one request serialise; other parameter sets stay -----------------------------
def concurrent_loads(execution_ids: list[str], results: str, executions: str) -> list[BaseException | None]:
    barrier = threading.Barrier(len(execution_ids))
    outcomes: list[BaseException | None] = [None] * len(execution_ids)

    def run(index: int) -> None:
        barrier.wait()
        try:
            load(execution_ids[index], results, executions)
        except BaseException as exc:
            outcomes[index] = exc

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(execution_ids))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return outcomes


@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_loads_of_one_request_end_with_one_executions_rows(
    amc: EmulatorServer, executions: str, results: str, attempt: int
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    first, _ = run_and_load(amc, executions, results, "dag_sched")  # the day, loaded once
    ids = []
    for n in range(2):  # then a re-run and a backfill of the same day, loaded at the same time
        ids.append(submit(executions, ti_of(f"dag_{n}")))
        amc.admin.advance(5)
    amc.admin.advance(30)
    for execution_id in ids:
        finish(executions, execution_id, amc)
    outcomes = concurrent_loads(ids, results, executions)
    counts = rows_by_execution(results)
    assert first not in counts
    assert len(counts) == 1 and list(counts.values()) == [12], (counts, outcomes)
    assert list(counts) == [ids[-1]] and outcomes[-1] is None  # the newer one wins, whoever went first
    for outcome in outcomes:  # a refused older load says why
        assert outcome is None or "newer execution of the same request" in str(outcome)


def test_concurrent_loads_of_two_parameter_sets_keep_both(
    amc: EmulatorServer, executions: str, results: str
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    run_and_load(amc, executions, results, "dag_other", time_window_end="2026-03-03")  # the table exists
    ids = [
        submit(executions, ti_of(f"dag_{value}"), parameter_values={"min_impressions": value})
        for value in (1, 2)
    ]
    amc.admin.advance(30)
    for execution_id in ids:
        finish(executions, execution_id, amc)
    assert concurrent_loads(ids, results, executions) == [None, None]
    counts = rows_by_execution(results)
    assert (counts[ids[0]], counts[ids[1]]) == (12, 12)


# ---- 13.3 the XCom of a finished execution does not depend on the execution table --------------------------
def test_xcom_is_the_same_with_and_without_the_execution_table(amc: EmulatorServer, executions: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
    with_table = create_operator(executions, wait_for_completion=True, poll_interval=0.05)
    with pytest.raises(TaskDeferred) as deferred:
        with_table.execute(task_context(ti_of("dag_a"), task_state_store=InMemoryTaskStateStore()))
    path, kwargs = deferred.value.trigger.serialize()
    amc.admin.advance(30)

    async def first_event() -> Any:
        async for event in import_string(path)(**kwargs).run():
            return event.payload
        raise AssertionError("no event")

    payload = asyncio.run(first_event())
    without_table = create_operator(None, wait_for_completion=True, poll_interval=0.05)
    metadata = [
        operator.execute_complete(task_context(FakeTaskInstance()), payload)  # type: ignore[arg-type]
        for operator in (with_table, without_table)
    ]
    assert metadata[0] == metadata[1]
    window = metadata[1]["time_window"]
    assert window["type"] == "EXPLICIT" and window["time_zone"] == "UTC"
    assert (window["start_utc"], window["end_utc"]) == ("2026-03-01T00:00:00Z", "2026-03-02T00:00:00Z")
    assert metadata[1]["output_format"] == "CSV"
    submission = Submission.model_validate(payload["submission"])
    assert submission.fingerprint == submission.identity.key


# ---- 16.1 one definition of the request identity, used by the three decisions
def test_changing_the_identity_definition_changes_all_three_decisions(
    amc: EmulatorServer, executions: str, results: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Patch ``lifecycle.identity_fields`` to forget parameter values: the fingerprint, the lookup
    and the load's replace decision all change with it (so none has its own copy of the rule)."""
    from airflow_provider_amc import lifecycle

    amc.admin.script(DEMO_WORKFLOW_ID, **{**FAST, **LIVE})

    def decisions() -> tuple[bool, bool, bool]:
        hook = AmcHook()
        for live in hook.find_executions(workflow_id=DEMO_WORKFLOW_ID, instance_id=DEFAULT_INSTANCE_ID):
            if live.status in ("PENDING", "RUNNING"):  # a clean start for each round
                hook.cancel_execution(live.workflow_execution_id, instance_id=DEFAULT_INSTANCE_ID)
        one, two = ({"min_impressions": value} for value in (1, 2))
        fingerprints = [
            create_operator(None, parameter_values=values).build_submission(task_context()).fingerprint
            for values in (one, two)
        ]
        store = InMemoryTaskStateStore()
        crashed_try(store)
        stranger = outside_execution(parameter_values=two)  # live, unclaimed, other parameter values
        adopted = submit(executions, ti_of("dag_b", try_number=2), store) == stranger
        amc.admin.script(DEMO_WORKFLOW_ID, **FAST)
        table = f"{results}_{uuid.uuid4().hex[:4]}"
        try:
            first, _ = run_and_load(amc, executions, table, "dag_p1", parameter_values=one)
            run_and_load(amc, executions, table, "dag_p2", parameter_values=two)
            replaced = first not in rows_by_execution(table)
        finally:
            drop(table)
        amc.admin.script(DEMO_WORKFLOW_ID, **{**FAST, **LIVE})
        return fingerprints[0] == fingerprints[1], adopted, replaced

    assert decisions() == (False, False, False)
    original = lifecycle.identity_fields
    monkeypatch.setattr(
        lifecycle, "identity_fields", lambda identity: {**original(identity), "parameter_values": None}
    )
    assert decisions() == (True, True, True)


# ---- 16.2 on_kill never cancels what this task did not create
@pytest.mark.parametrize("origin", ["another-run", "outside"])
def test_a_sensor_never_cancels_an_execution_of_another_run(
    amc: EmulatorServer, executions: str, origin: str
) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    execution_id = submit(executions, ti_of("dag_a")) if origin == "another-run" else outside_execution()
    sensor = AmcExecutionSensor(
        task_id="wait", execution_id=execution_id, postgres_conn_id=PG_CONN_ID, table=executions
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context(ti_of("dag_b", task_id="wait")))
    assert deferred.value.trigger.cancel_on_kill is False  # the triggerer's on_kill will not cancel
    sensor.on_kill()
    assert amc_status(amc, execution_id) == "PENDING"


def test_a_sensor_of_the_submitting_run_still_cancels(amc: EmulatorServer, executions: str) -> None:
    amc.admin.script(DEMO_WORKFLOW_ID, **LIVE)
    execution_id = submit(executions, ti_of("dag_a"))
    sensor = AmcExecutionSensor(
        task_id="wait", execution_id=execution_id, postgres_conn_id=PG_CONN_ID, table=executions
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(task_context(ti_of("dag_a", task_id="wait")))
    assert deferred.value.trigger.cancel_on_kill is True
    sensor.on_kill()
    assert amc_status(amc, execution_id) == "CANCELLED"
