"""ExecutionRecords against a real Postgres (127.0.0.1:5432, database ``test``)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg import sql

from airflow_provider_amc.records import COLUMNS, DEFAULT_TABLE, ExecutionRecords

pytestmark = pytest.mark.integration

DSN = "postgresql://postgres@127.0.0.1:5432/test"
CONN_ID = "amc_test_pg"


def run_sql(query: sql.Composable, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Direct psycopg access, independent of the code under test."""
    with psycopg.connect(DSN, autocommit=True) as conn, conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture(autouse=True)
def pg_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", DSN)


@pytest.fixture
def table() -> Iterator[str]:
    name = f"amc_exec_{uuid.uuid4().hex[:12]}"
    yield name
    run_sql(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"amc_schema_{uuid.uuid4().hex[:12]}"
    run_sql(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    yield name
    run_sql(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


def rows_of(table: str) -> list[tuple[object, ...]]:
    return run_sql(sql.SQL("SELECT execution_id FROM {}").format(sql.Identifier(*table.split("."))))


def test_default_table_name() -> None:
    assert ExecutionRecords().table == DEFAULT_TABLE == "amc_executions"


def test_first_upsert_creates_table_with_the_documented_columns(table: str) -> None:
    records = ExecutionRecords(CONN_ID, table)
    assert records.get("nope") is None  # no table yet: no error, nothing created
    assert not records.table_exists()

    records.upsert(
        "exec-1", instance_id="amcdemo0001", workflow_id="wf", status="pending", amc_status="PENDING"
    )

    columns = run_sql(
        sql.SQL(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_name = %s ORDER BY ordinal_position"
        ),
        (table,),
    )
    assert [name for name, _ in columns] == list(COLUMNS)
    types = dict(columns)
    assert (types["parameter_values"], types["row_count"], types["map_index"]) == (
        "jsonb",
        "bigint",
        "integer",
    )
    assert types["created_at"] == "timestamp with time zone"
    row = records.get("exec-1")
    assert row is not None
    assert (row["instance_id"], row["workflow_id"], row["status"], row["amc_status"]) == (
        "amcdemo0001",
        "wf",
        "pending",
        "PENDING",
    )
    assert row["row_count"] is None and row["completed_at"] is None
    assert row["created_at"] is not None and row["updated_at"] is not None


def test_second_upsert_updates_only_given_fields(table: str) -> None:
    submitter = ExecutionRecords(CONN_ID, table)
    submitter.upsert(
        "exec-1",
        workflow_id="wf",
        status="pending",
        time_window_start="2024-03-09T00:00:00",
        time_window_end="2024-03-16T00:00:00",
        time_window_time_zone="America/Los_Angeles",
        dag_id="dag_a",
        run_id="scheduled__2024-03-16",
        task_id="submit",
        map_index=-1,
        try_number=1,
    )
    first = submitter.get("exec-1")
    assert first is not None
    time.sleep(0.01)

    completed_at = datetime(2024, 3, 17, 1, 2, 3, tzinfo=UTC)
    ExecutionRecords(CONN_ID, table).upsert(  # a different instance, like the sensor's
        "exec-1",
        status="completed",
        amc_status="SUCCEEDED",
        row_count=12,
        size_bytes=345,
        completed_at=completed_at,
    )
    second = submitter.get("exec-1")
    assert second is not None
    changed = {key for key in second if second[key] != first[key]}
    assert changed == {"status", "amc_status", "row_count", "size_bytes", "completed_at", "updated_at"}
    assert (second["row_count"], second["size_bytes"], second["completed_at"]) == (12, 345, completed_at)
    assert second["updated_at"] > first["updated_at"]
    assert (second["dag_id"], second["run_id"], second["created_at"]) == (
        "dag_a",
        "scheduled__2024-03-16",
        first["created_at"],
    )


def test_repeated_upsert_is_idempotent(table: str) -> None:
    records = ExecutionRecords(CONN_ID, table)
    for _ in range(3):
        records.upsert("exec-1", status="running", workflow_id="wf")
    records.upsert("exec-2", status="running", workflow_id="wf")
    assert sorted(rows_of(table)) == [("exec-1",), ("exec-2",)]


def test_json_columns_round_trip(table: str) -> None:
    records = ExecutionRecords(CONN_ID, table)
    parameters = {
        "campaign_ids": ["a", "b"],
        "threshold": 9001,
        "ratio": 0.5,
        "nested": {"on": True, "off": None},
    }
    columns = [{"name": "impressions", "columnType": "LONG"}, {"name": "spend", "columnType": "DECIMAL"}]
    records.upsert("exec-1", parameter_values=parameters, output_columns=columns)
    row = records.get("exec-1")
    assert row is not None
    assert (row["parameter_values"], row["output_columns"]) == (parameters, columns)
    stored_type = run_sql(
        sql.SQL("SELECT jsonb_typeof(parameter_values), jsonb_typeof(output_columns) FROM {}").format(
            sql.Identifier(table)
        )
    )
    assert stored_type == [("object", "array")]
    records.upsert("exec-1", parameter_values={})
    row = records.get("exec-1")
    assert row is not None and row["parameter_values"] == {} and row["output_columns"] == columns


def test_schema_qualified_table(schema: str) -> None:
    qualified = f"{schema}.executions"
    records = ExecutionRecords(CONN_ID, qualified)
    records.upsert("exec-1", status="failed", status_reason="bad SQL")
    records.upsert("exec-1", amc_status="FAILED")
    assert rows_of(qualified) == [("exec-1",)]
    row = ExecutionRecords(CONN_ID, qualified).get("exec-1")
    assert row is not None and (row["status"], row["status_reason"], row["amc_status"]) == (
        "failed",
        "bad SQL",
        "FAILED",
    )
    assert run_sql(sql.SQL("SELECT to_regclass('public.executions')")) == [(None,)]


def test_get_unknown_id_returns_none(table: str) -> None:
    records = ExecutionRecords(CONN_ID, table)
    records.ensure_table()
    records.ensure_table()  # idempotent
    assert records.get("never-submitted") is None


def test_concurrent_table_creation(table: str) -> None:
    def create(index: int) -> None:
        ExecutionRecords(CONN_ID, table).upsert(f"exec-{index}", status="pending")

    with ThreadPoolExecutor(max_workers=6) as pool:
        list(pool.map(create, range(6)))
    assert len(rows_of(table)) == 6


@pytest.mark.parametrize(
    "fields",
    [{"row_cout": 1}, {"created_at": datetime.now(UTC)}, {"execution_id": "x"}, {"status": "SUCCEEDED"}],
)
def test_bad_fields_rejected_before_any_sql(table: str, fields: dict[str, object]) -> None:
    records = ExecutionRecords(CONN_ID, table)
    with pytest.raises((ValueError, TypeError)) as info:
        records.upsert("exec-1", **fields)
    assert next(iter(fields)) in str(info.value)
    assert not records.table_exists()  # nothing was created


@pytest.mark.parametrize(
    "name",
    [
        "x; drop table y",
        '"a"',
        "A",
        "a.b.c",
        "",
        "a" * 64,
        "1abc",
        "a-b",
        ".a",
        "a.",
        "a b",
        "ä",
        None,
    ],
)
def test_hostile_table_names_rejected_without_connecting(name: object) -> None:
    # The connection id does not exist: any attempt to connect would raise something else.
    with pytest.raises(ValueError, match=r"^table .* is not a valid table name.*\^\[a-z_\]") as info:
        ExecutionRecords("amc_no_such_connection", name)  # type: ignore[arg-type]
    assert repr(name) in str(info.value)


def test_longest_valid_name_is_accepted() -> None:
    assert ExecutionRecords("amc_no_such_connection", "a" * 63 + "." + "_" + "b" * 62).table.startswith("a")
