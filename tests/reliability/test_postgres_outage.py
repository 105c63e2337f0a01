"""Postgres unavailable when the operator or the sensor writes the execution row: the task fails
(Airflow retries it), and the retry, with Postgres back, writes the row; XCom and row agree and
nothing is silently dropped."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from reliability_helpers import (
    INSTANCE,
    assert_single_execution,
    context,
    create_operator,
    fast_trigger,
    finish_executions,
    first_event,
    pg_rows,
    sensor,
    temp_table,
)
from reliability_registry import record

from airflow_env import InMemoryTaskStateStore, connection_var
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]
PG_CONN = "amc_reliability_flaky_pg"
PG_UP = "postgresql://postgres@127.0.0.1:5432/test"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def table() -> Iterator[str]:
    with temp_table() as name:
        yield name


def postgres_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(connection_var(PG_CONN), f"postgresql://postgres@127.0.0.1:{closed_port()}/test")


def postgres_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(connection_var(PG_CONN), PG_UP)


def test_sensor_completion_with_postgres_down_fails_then_retry_records(
    amc_env: EmulatorServer, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution_id = str(create_operator().execute(context()))
    finish_executions(amc_env)
    event = first_event(fast_trigger(execution_id))
    assert event["status"] == "success"
    postgres_down(monkeypatch)
    first_try = context()
    with pytest.raises(Exception, match=r"(?i)connect"):
        sensor(execution_id, pg_conn_id=PG_CONN, table=table).execute_complete(first_try, event)
    record("faults_injected")
    postgres_up(monkeypatch)
    retry = context(try_number=2)
    metadata = sensor(execution_id, pg_conn_id=PG_CONN, table=table).execute_complete(retry, event)
    rows = pg_rows(table)
    expected = amc_env.admin.result_summary(INSTANCE, execution_id)
    if len(rows) != 1 or rows[0]["row_count"] != expected["rows"]:
        record("records_lost")
    assert len(rows) == 1
    row = rows[0]
    assert retry["ti"].pushed_value("amc_output") == metadata
    assert (row["execution_id"], row["status"], row["row_count"], row["size_bytes"]) == (
        metadata["execution_id"],
        "completed",
        metadata["row_count"],
        metadata["size_bytes"],
    )
    assert row["row_count"] == expected["rows"] and row["output_location"] == metadata["output_location"]
    record("tasks_survived")


def test_operator_with_postgres_down_fails_then_retry_reattaches_and_records(
    amc_env: EmulatorServer, table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = InMemoryTaskStateStore()
    postgres_down(monkeypatch)
    with pytest.raises(Exception, match=r"(?i)connect"):
        create_operator(pg_conn_id=PG_CONN, table=table).execute(context(store))
    record("faults_injected")
    postgres_up(monkeypatch)
    retry = context(store, try_number=2)
    execution_id = create_operator(pg_conn_id=PG_CONN, table=table).execute(retry)
    assert_single_execution(amc_env)  # reattached to the first try's execution
    rows = pg_rows(table)
    if [row["execution_id"] for row in rows] != [execution_id]:
        record("records_lost")
    assert [(row["execution_id"], row["try_number"]) for row in rows] == [(execution_id, 2)]
    assert retry["ti"].pushed_value("amc_execution_id") == execution_id
    record("tasks_survived")
