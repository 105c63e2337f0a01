"""AmcToPostgresOperator: emulator results (real HTTP) loaded into a real Postgres (database ``test``)."""

from __future__ import annotations

import csv
import io
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from amc_connections import PG_DSN, amc_connection
from psycopg import sql

from airflow_provider_amc.client import (
    AmcClient,
    CreateExecutionRequest,
)
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.results import execution_folder, measure_results, object_storage_sink
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator

pytestmark = pytest.mark.integration
INSTANCE = defaults.DEFAULT_INSTANCE_ID
WORKFLOW = defaults.DEMO_WORKFLOW_ID
PG_CONN_ID = "amc_load_pg"


def query(statement: sql.Composable | str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Direct psycopg access, independent of the code under test."""
    with psycopg.connect(PG_DSN, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def amc(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", amc_connection(emulator.url))
    monkeypatch.setenv(f"AIRFLOW_CONN_{PG_CONN_ID.upper()}", PG_DSN)
    yield emulator


@pytest.fixture
def table() -> Iterator[str]:
    name = f"amc_load_{uuid.uuid4().hex[:12]}"
    yield name
    query(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def finished_execution(
    server: EmulatorServer, *, rows: int, parts: int, output_format: str = "CSV", instance: str = INSTANCE
) -> str:
    """A SUCCEEDED execution of the demo workflow with a scripted result size (in ``instance``)."""
    server.admin.script(WORKFLOW, rows=rows, parts=parts, pending_seconds=0, running_seconds=1)
    request = CreateExecutionRequest(
        workflow_id=WORKFLOW,
        time_window_type="EXPLICIT",
        time_window_start="2026-01-01T00:00:00",
        time_window_end="2026-01-02T00:00:00",
        output_format=output_format,
    )
    hook = AmcHook()
    execution_id = hook.create_execution(request, instance_id=instance).workflow_execution_id
    server.admin.advance(10)
    assert hook.get_execution(execution_id, instance_id=instance).status == "SUCCEEDED"
    return execution_id


#: The execution table of these tests (emulator ids repeat across tests: never the shared default).
EXECUTIONS_TABLE = f"amc_load_exec_{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module", autouse=True)
def _drop_executions_table() -> Iterator[None]:
    yield
    query(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(EXECUTIONS_TABLE)))


def save_like_the_sensor(execution_id: str, output_path: Path) -> Any:
    """Save an execution's files as AmcExecutionSensor(output_path=...) does."""
    folder = execution_folder(str(output_path), execution_id)
    return measure_results(
        AmcHook().iter_result_parts(execution_id, instance_id=INSTANCE),
        save_to=object_storage_sink(folder),
        execution_id=execution_id,
    )


def load(execution_id: str, table: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("executions_table", EXECUTIONS_TABLE)
    operator = AmcToPostgresOperator(
        task_id="load", execution_id=execution_id, table=table, postgres_conn_id=PG_CONN_ID, **kwargs
    )
    return operator.execute({})  # type: ignore[arg-type]


def expected_from_csv(execution_id: str) -> dict[str, Any]:
    """Facts computed from the downloaded CSV parts with the csv module (not the code under test)."""
    rows = 0
    spend = Decimal(0)
    null_spend = null_seen = 0
    latest = ""
    for _, chunks in AmcHook().iter_result_parts(execution_id, instance_id=INSTANCE):
        reader = csv.DictReader(io.StringIO(b"".join(chunks).decode()))
        for row in reader:
            rows += 1
            if row["spend"]:
                spend += Decimal(row["spend"])
            else:
                null_spend += 1
            null_seen += not row["last_seen"]
            latest = max(latest, row["last_seen"])
    return {"rows": rows, "spend": spend, "null_spend": null_spend, "null_seen": null_seen, "latest": latest}


def facts_in(table: str, execution_id: str) -> dict[str, Any]:
    (row,) = query(
        sql.SQL(
            "SELECT count(*), sum(spend), count(*) - count(spend), count(*) - count(last_seen), "
            "max(last_seen) FROM {} WHERE amc_execution_id = %s"
        ).format(sql.Identifier(table)),
        (execution_id,),
    )
    return dict(zip(("rows", "spend", "null_spend", "null_seen", "latest"), row, strict=True))


def column_types(table: str) -> dict[str, tuple[Any, ...]]:
    found = query(
        "SELECT column_name, data_type, numeric_precision, numeric_scale FROM information_schema.columns "
        "WHERE table_name = %s ORDER BY ordinal_position",
        (table,),
    )
    return {name: tuple(rest) for name, *rest in found}


def count(table: str) -> int:
    return int(query(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))[0][0])


def test_multi_part_csv_lands_typed_and_exact_and_reloads_idempotently(
    amc: EmulatorServer, table: str
) -> None:
    execution_id = finished_execution(amc, rows=100_000, parts=3)

    assert load(execution_id, table) == {"table": table, "execution_id": execution_id, "rows": 100_000}

    types = column_types(table)
    assert list(types) == [
        "amc_execution_id",
        "amc_instance_id",
        "campaign",
        "event_date",
        "impressions",
        "spend",
        "last_seen",
    ]
    assert types["spend"] == ("numeric", 38, 2)
    assert types["impressions"][0] == "bigint"
    assert (types["event_date"][0], types["last_seen"][0]) == ("date", "timestamp without time zone")
    assert types["campaign"][0] == types["amc_execution_id"][0] == types["amc_instance_id"][0] == "text"
    filled = query(sql.SQL("SELECT DISTINCT amc_instance_id FROM {}").format(sql.Identifier(table)))
    assert filled == [(INSTANCE,)]

    expected = expected_from_csv(execution_id)
    actual = facts_in(table, execution_id)
    assert actual["rows"] == expected["rows"] == 100_000
    assert actual["spend"] == expected["spend"]  # exact: numeric, never float
    assert actual["null_spend"] == expected["null_spend"] > 0
    assert actual["null_seen"] == expected["null_seen"] > 0
    assert actual["latest"] == datetime.fromisoformat(expected["latest"])
    quoted = query(
        sql.SQL("SELECT count(*) FROM {} WHERE campaign = %s").format(sql.Identifier(table)),
        ('Spring Sale, "Big" Deals',),
    )
    assert quoted[0][0] > 0  # RFC-4180 quoting understood

    assert load(execution_id, table)["rows"] == 100_000
    assert count(table) == 100_000  # replaced, not appended


def test_two_executions_share_a_table_and_reload_only_their_own_rows(amc: EmulatorServer, table: str) -> None:
    first = finished_execution(amc, rows=30, parts=2)
    amc.admin.clear_script(WORKFLOW)
    second = finished_execution(amc, rows=20, parts=1)
    load(first, table)
    load(second, table)
    load(first, table)
    per_execution = dict(
        query(sql.SQL("SELECT amc_execution_id, count(*) FROM {} GROUP BY 1").format(sql.Identifier(table)))
    )
    assert per_execution == {first: 30, second: 20}


def test_empty_result_creates_the_table_without_rows(amc: EmulatorServer, table: str) -> None:
    execution_id = finished_execution(amc, rows=0, parts=1)
    assert load(execution_id, table)["rows"] == 0
    assert count(table) == 0
    assert column_types(table)["spend"] == ("numeric", 38, 2)


def test_parquet_result(amc: EmulatorServer, table: str, tmp_path: Path) -> None:
    execution_id = finished_execution(amc, rows=20_000, parts=2, output_format="PARQUET")
    assert load(execution_id, table)["rows"] == 20_000

    saved = save_like_the_sensor(execution_id, tmp_path)
    assert {part.format for part in saved.files} == {"PARQUET"}
    arrow = [pq.read_table(tmp_path / execution_id / part.name) for part in saved.files]
    expected_spend = sum(
        (value for t in arrow for value in t.column("spend").to_pylist() if value is not None), Decimal(0)
    )
    expected_nulls = sum(t.column("last_seen").null_count for t in arrow)
    actual = facts_in(table, execution_id)
    assert (actual["rows"], actual["spend"], actual["null_seen"]) == (20_000, expected_spend, expected_nulls)


def test_from_saved_source_path_downloads_nothing(amc: EmulatorServer, table: str, tmp_path: Path) -> None:
    execution_id = finished_execution(amc, rows=5_000, parts=3)
    # Save the files the way the sensor does (output_path).
    save_like_the_sensor(execution_id, tmp_path)
    assert len(list((tmp_path / execution_id).iterdir())) == 4  # 3 parts and the manifest
    # The emulator logs a streamed download when its response ends, which can be just after the
    # client has read the last byte: wait for the three entries before clearing the log.
    deadline = time.monotonic() + 5
    while amc.admin.count("GET", "^/downloads/") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    amc.admin.clear_requests()

    assert load(execution_id, table, source_path=str(tmp_path))["rows"] == 5_000
    assert amc.admin.count("GET", "^/downloads/") == 0
    assert amc.admin.count("GET", "/downloadUrls$") == 0
    assert facts_in(table, execution_id)["spend"] == expected_from_csv(execution_id)["spend"]


def test_expired_download_urls_are_fetched_again(
    amc: EmulatorServer, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    amc.admin.config(scaled_lifetimes=True)  # expire URLs by moving the emulated clock
    execution_id = finished_execution(amc, rows=1_000, parts=2)
    stale = AmcHook().get_download_urls(execution_id, instance_id=INSTANCE)
    amc.admin.advance(defaults.DOWNLOAD_URL_EXPIRES_SECONDS + 60)
    real = AmcClient.get_download_urls  # the client owns the refetch; the hook hands it through
    calls: list[str] = []

    def first_stale(self: AmcClient, eid: str, *, instance_id: str | None = None) -> Any:
        calls.append(eid)
        return stale if len(calls) == 1 else real.__get__(self, AmcClient)(eid, instance_id=instance_id)

    monkeypatch.setattr(AmcClient, "get_download_urls", first_stale)
    assert load(execution_id, table)["rows"] == 1_000
    assert len(calls) == 2  # the stale list, then one refetch shared by both parts
    assert amc.admin.count("GET", "^/downloads/") == 3  # one 403, then both parts


def test_bad_table_name_fails_before_any_call(amc: EmulatorServer) -> None:
    amc.admin.clear_requests()
    with pytest.raises(AirflowFailException, match="table 'bad-name; drop' is not a valid table name"):
        load("some-execution", "bad-name; drop")
    assert amc.admin.requests() == []


def test_unfinished_execution_is_refused(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(WORKFLOW, pending_seconds=600)
    request = CreateExecutionRequest(workflow_id=WORKFLOW, time_window_type="MOST_RECENT_DAY")
    execution_id = AmcHook().create_execution(request, instance_id=INSTANCE).workflow_execution_id
    with pytest.raises(AirflowFailException, match="is PENDING, not SUCCEEDED"):
        load(execution_id, table)


@pytest.fixture
def executions_table() -> Iterator[str]:
    name = f"amc_exec_{uuid.uuid4().hex[:12]}"
    yield name
    query(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def record_window(executions_table: str, execution_id: str, instance: str = INSTANCE) -> None:
    """The row the create operator writes: request key and AMC's creation time included."""
    from airflow_provider_amc.lifecycle import amc_instant, executed_identity
    from airflow_provider_amc.records import ExecutionRecords

    execution = AmcHook().get_execution(execution_id, instance_id=instance)
    ExecutionRecords(PG_CONN_ID, executions_table).upsert(
        execution_id,
        instance_id=instance,
        workflow_id=WORKFLOW,
        status="completed",
        time_window_start="2026-01-01T00:00:00",
        time_window_end="2026-01-02T00:00:00",
        time_window_time_zone="UTC",
        output_format="CSV",
        request_key=executed_identity(instance, execution, "CSV").key,
        amc_created_at=amc_instant(execution.create_time),
    )


def rows_by_execution(table: str) -> dict[str, int]:
    found = query(
        sql.SQL("SELECT amc_execution_id, count(*) FROM {} GROUP BY 1").format(sql.Identifier(table))
    )
    return {execution_id: count for execution_id, count in found}


@pytest.mark.parametrize("replace", [True, False])
def test_rerun_of_a_window_replaces_the_earlier_executions_rows(
    amc: EmulatorServer, table: str, executions_table: str, replace: bool
) -> None:
    first = finished_execution(amc, rows=300, parts=1)
    record_window(executions_table, first)
    load(first, table, executions_table=executions_table, replace_same_window=replace)
    second = finished_execution(amc, rows=200, parts=2)  # the same day, run again
    record_window(executions_table, second)
    load(second, table, executions_table=executions_table, replace_same_window=replace)
    expected = {second: 200} if replace else {first: 300, second: 200}
    assert rows_by_execution(table) == expected


def rows_by_instance(table: str) -> dict[tuple[str, str], int]:
    found = query(
        sql.SQL("SELECT amc_instance_id, amc_execution_id, count(*) FROM {} GROUP BY 1, 2").format(
            sql.Identifier(table)
        )
    )
    return {(instance, execution_id): count for instance, execution_id, count in found}


def test_two_instances_runs_of_the_same_window_never_replace_each_others_rows(
    amc: EmulatorServer, table: str, executions_table: str
) -> None:
    """A fan-out: the same workflow and window in two instances, loaded into one table."""
    other = defaults.SECOND_INSTANCE_ID
    first = finished_execution(amc, rows=30, parts=1)
    record_window(executions_table, first)
    load(first, table, executions_table=executions_table)
    second = finished_execution(amc, rows=20, parts=2, instance=other)  # created later: "newer"
    record_window(executions_table, second, other)
    load(second, table, executions_table=executions_table, instance_id=other)
    assert rows_by_instance(table) == {(INSTANCE, first): 30, (other, second): 20}
    # Two requests: the execution table's request key has the instance in it.
    keys = query(
        sql.SQL("SELECT DISTINCT request_key FROM {} WHERE execution_id = ANY(%s)").format(
            sql.Identifier(executions_table)
        ),
        ([first, second],),
    )
    assert len(keys) == 2, keys

    # The first instance's re-run replaces its own earlier rows only; loading the second
    # instance's (now older) execution again is not refused as stale.
    rerun = finished_execution(amc, rows=10, parts=1)
    record_window(executions_table, rerun)
    load(rerun, table, executions_table=executions_table)
    assert load(second, table, executions_table=executions_table, instance_id=other)["rows"] == 20
    assert rows_by_instance(table) == {(INSTANCE, rerun): 10, (other, second): 20}


def test_no_execution_table_loads_per_execution_only(amc: EmulatorServer, table: str) -> None:
    first = finished_execution(amc, rows=50, parts=1)
    load(first, table, executions_table=None)
    second = finished_execution(amc, rows=60, parts=1)
    load(second, table, executions_table=None)
    assert rows_by_execution(table) == {first: 50, second: 60}


def test_rerun_of_a_day_with_a_smaller_result_loads_exactly_the_new_rows(
    amc: EmulatorServer, table: str, tmp_path: Path
) -> None:
    """Issue 15 "stale files": 3 parts / 9 rows, then the re-run's 2 parts / 6 rows, same output_path."""
    from airflow_env import FakeTaskInstance
    from airflow_provider_amc.records import ExecutionRecords
    from airflow_provider_amc.sensors.amc import AmcExecutionSensor

    output_path = str(tmp_path / "2026-01-01")
    loaded = {}
    for rows, parts in ((9, 3), (6, 2)):
        amc.admin.clear_script(WORKFLOW)
        execution_id = finished_execution(amc, rows=rows, parts=parts)
        ExecutionRecords(PG_CONN_ID, EXECUTIONS_TABLE).upsert(
            execution_id,
            instance_id=INSTANCE,
            workflow_id=WORKFLOW,
            status="running",
            time_window_start="2026-01-01T00:00:00",
            time_window_end="2026-01-02T00:00:00",
            time_window_time_zone="UTC",
        )
        sensor = AmcExecutionSensor(
            task_id="wait",
            execution_id=execution_id,
            postgres_conn_id=PG_CONN_ID,
            table=EXECUTIONS_TABLE,
            output_path=output_path,
        )
        execution = AmcHook().get_execution(execution_id, instance_id=INSTANCE)
        sensor.finish({"ti": FakeTaskInstance()}, execution, INSTANCE)  # type: ignore[arg-type]
        loaded[execution_id] = load(execution_id, table, source_path=output_path)["rows"]
    second = list(loaded)[-1]
    assert list(loaded.values()) == [9, 6]
    assert rows_by_execution(table) == {second: 6}  # the first run's rows replaced, no stale part
    recorded = ExecutionRecords(PG_CONN_ID, EXECUTIONS_TABLE).get(second)
    assert recorded is not None and recorded["row_count"] == 6 == count(table)


def test_a_load_that_disagrees_with_the_recorded_row_count_commits_nothing(
    amc: EmulatorServer, table: str
) -> None:
    from airflow_provider_amc.records import ExecutionRecords

    execution_id = finished_execution(amc, rows=40, parts=2)
    ExecutionRecords(PG_CONN_ID, EXECUTIONS_TABLE).upsert(execution_id, status="completed", row_count=41)
    with pytest.raises(AirflowFailException, match="the files hold 40 rows but 41 were recorded"):
        load(execution_id, table)
    assert query("SELECT to_regclass(%s)", (table,)) == [(None,)]
