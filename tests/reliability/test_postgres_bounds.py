"""Postgres calls are bounded in time: a locked table or a server that never answers ends in a clear
error within the configured bound instead of stalling a sensor or a load for ever."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from contextlib import closing

import psycopg
import pytest
from psycopg import sql
from reliability_helpers import within
from reliability_registry import record

from airflow_env import PG_TEST_DSN
from airflow_provider_amc.postgres_bounds import (
    CONNECT_TIMEOUT,
    LOCK_TIMEOUT_MS,
    RECORD_STATEMENT_TIMEOUT_MS,
    bounded_args,
    bounded_hook,
)
from airflow_provider_amc.records import ExecutionRecords
from airflow_provider_amc.transfers.postgres_load import load_execution
from airflow_provider_amc.transfers.postgres_types import TableColumn
from netkit import SlowServer, silent

CONN_ID = "amc_bounds_pg"


def _postgres(monkeypatch: pytest.MonkeyPatch, port: int = 5432, **extra: object) -> None:
    conn = {"conn_type": "postgres", "host": "127.0.0.1", "port": port, "login": "postgres", "schema": "test"}
    monkeypatch.setenv(f"AIRFLOW_CONN_{CONN_ID.upper()}", json.dumps({**conn, "extra": extra}))


@pytest.fixture
def locked_table() -> Iterator[str]:
    """A table another session holds ``LOCK ... IN ACCESS EXCLUSIVE MODE`` on (until the test ends)."""
    name = f"amc_locked_{uuid.uuid4().hex[:10]}"
    holder = psycopg.connect(PG_TEST_DSN)
    try:
        ExecutionRecords(postgres_conn_id="unused", table=name)  # the name is valid for records
        with psycopg.connect(PG_TEST_DSN, autocommit=True) as setup:
            setup.execute(
                sql.SQL(
                    "CREATE TABLE {} "
                    "(execution_id text, amc_execution_id text, amc_instance_id text, x bigint)"
                ).format(sql.Identifier(name))
            )
        holder.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(name)))
        yield name
    finally:
        holder.rollback()
        holder.close()
        with psycopg.connect(PG_TEST_DSN, autocommit=True) as cleanup:
            cleanup.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def test_defaults_are_added_and_extras_win() -> None:
    args = bounded_args({"host": "h"}, RECORD_STATEMENT_TIMEOUT_MS)
    assert args["connect_timeout"] == CONNECT_TIMEOUT
    assert (
        args["options"]
        == f"-c lock_timeout={LOCK_TIMEOUT_MS} -c statement_timeout={RECORD_STATEMENT_TIMEOUT_MS}"
    )
    args = bounded_args({"connect_timeout": 3, "lock_timeout": 500, "statement_timeout": 900}, None)
    assert (args["connect_timeout"], args["options"]) == (3, "-c lock_timeout=500 -c statement_timeout=900")
    assert "statement_timeout" not in bounded_args({}, None)["options"]  # loads: COPY streams a download
    assert bounded_args({"options": "-c lock_timeout=7"}, None)["options"] == "-c lock_timeout=7"


def test_record_write_on_a_locked_table_ends_with_a_lock_timeout(
    monkeypatch: pytest.MonkeyPatch, locked_table: str
) -> None:
    _postgres(monkeypatch, lock_timeout=1000)
    records = ExecutionRecords(postgres_conn_id=CONN_ID, table=locked_table)
    started = time.monotonic()
    with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"):
        within(20, lambda: records.get("e-1"))
    assert time.monotonic() - started < 5
    record("calls_bounded")


def test_result_load_on_a_locked_table_ends_with_a_lock_timeout(
    monkeypatch: pytest.MonkeyPatch, locked_table: str
) -> None:
    _postgres(monkeypatch, lock_timeout=1000)
    # The table's data columns exactly (an extra column would fail the schema-drift check first).
    columns = [TableColumn("execution_id", "text"), TableColumn("x", "bigint")]
    started = time.monotonic()

    def load() -> int:
        with closing(bounded_hook(CONN_ID).get_conn()) as conn:  # what AmcToPostgresOperator opens
            return load_execution(
                conn,
                ("public", locked_table),
                columns,
                "e-1",
                [("p.csv", [b"execution_id,x\ne,1\n"])],
                instance_id="amcdemo0001",
            )

    with pytest.raises(psycopg.errors.LockNotAvailable, match="lock timeout"):
        within(20, load)
    assert time.monotonic() - started < 5
    record("calls_bounded")


def test_a_server_that_never_answers_ends_with_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    with SlowServer(silent(60)) as server:
        _postgres(monkeypatch, port=server.port, connect_timeout=2)
        records = ExecutionRecords(postgres_conn_id=CONN_ID, table="amc_never")
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError, match="timeout"):
            within(30, records.table_exists)
        assert time.monotonic() - started < 8
    record("calls_bounded")
