"""Nothing burns an AMC run that Postgres would then refuse (issue 15, item 7).

The execution table (schema included) is created/verified before the create call; NUL in
``parameter_values`` is refused before any HTTP call; NUL in AMC's own text (statusReason, column
descriptions) is recorded cleaned and never blocks the sensor. Emulator over real HTTP, real Postgres.
"""

from __future__ import annotations

from airflow_env import (
    PG_TEST_DSN,
    FakeTaskInstance,
    amc_connection_env,
    apply_airflow_test_env,
    postgres_connection_env,
    task_context,
)

apply_airflow_test_env()

import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException  # noqa: E402
from psycopg import sql  # noqa: E402
from psycopg.rows import dict_row  # noqa: E402

from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID  # noqa: E402
from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402
from airflow_provider_amc.execution_wait import AmcExecutionFailed  # noqa: E402
from airflow_provider_amc.hooks.amc import AmcHook  # noqa: E402
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.records import NUL_REPLACEMENT  # noqa: E402
from airflow_provider_amc.sensors.amc import AmcExecutionSensor  # noqa: E402

pytestmark = pytest.mark.integration
PG_CONN_ID = "amc_burn_pg"
CREATE_PATH = rf"^/amc/reporting/{DEFAULT_INSTANCE_ID}/workflowExecutions$"


def pg(statement: sql.Composable | str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    with psycopg.connect(PG_TEST_DSN, autocommit=True, row_factory=dict_row) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else []


@pytest.fixture
def amc(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    for name, value in {**amc_connection_env(emulator.url), **postgres_connection_env(PG_CONN_ID)}.items():
        monkeypatch.setenv(name, value)
    emulator.admin.script(DEMO_WORKFLOW_ID, pending_seconds=0, running_seconds=1)
    return emulator


@pytest.fixture
def schema() -> Iterator[str]:
    name = f"amc_schema_{uuid.uuid4().hex[:10]}"
    yield name
    pg(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
def table() -> Iterator[str]:
    name = f"amc_burn_{uuid.uuid4().hex[:12]}"
    yield name
    pg(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def submit(table: str, **kwargs: Any) -> str:
    operator = AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id=DEMO_WORKFLOW_ID,
        time_window_start="2026-03-01",
        time_window_end="2026-03-02",
        postgres_conn_id=PG_CONN_ID,
        table=table,
        **kwargs,
    )
    return str(operator.execute(task_context(FakeTaskInstance())))  # type: ignore[arg-type]


def test_a_table_in_a_new_schema_is_created_with_its_schema_before_the_run(
    amc: EmulatorServer, schema: str
) -> None:
    execution_id = submit(f"{schema}.executions")
    rows = pg(sql.SQL("SELECT execution_id FROM {}.executions").format(sql.Identifier(schema)))
    assert rows == [{"execution_id": execution_id}]


@pytest.fixture
def unprivileged(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Postgres login that may connect but not create anything in schema public."""
    role = f"amc_noperm_{uuid.uuid4().hex[:10]}"
    pg(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
    monkeypatch.setenv(f"AIRFLOW_CONN_{PG_CONN_ID.upper()}", f"postgresql://{role}@127.0.0.1:5432/test")
    yield role
    pg(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_a_table_postgres_refuses_fails_before_the_create_call(
    amc: EmulatorServer, table: str, unprivileged: str
) -> None:
    amc.admin.clear_requests()
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        submit(table)
    assert amc.admin.count("POST", CREATE_PATH) == 0


@pytest.mark.parametrize(
    "values",
    [{"advertiser": "A\x00"}, {"list": ["ok", "b\x00d"]}, {"nested": {"k\x00": 1}}, '{"a": "\\u0000"}'],
)
def test_nul_in_parameter_values_is_refused_before_any_call(
    amc: EmulatorServer, table: str, values: Any
) -> None:
    amc.admin.clear_requests()
    with pytest.raises(AirflowFailException, match=r"parameter_values.* contains a NUL character"):
        submit(table, parameter_values=values)
    assert amc.admin.requests() == []


def row_of(table: str, execution_id: str) -> dict[str, Any]:
    (row,) = pg(
        sql.SQL("SELECT * FROM {} WHERE execution_id = %s").format(sql.Identifier(table)), (execution_id,)
    )
    return row


def finish(table: str, execution_id: str, **changes: Any) -> dict[str, Any]:
    execution = AmcHook().get_execution(execution_id, instance_id=DEFAULT_INSTANCE_ID)
    if changes:
        execution = execution.model_copy(update=changes)
    sensor = AmcExecutionSensor(
        task_id="wait", execution_id=execution_id, postgres_conn_id=PG_CONN_ID, table=table
    )
    return sensor.finish(task_context(FakeTaskInstance()), execution, DEFAULT_INSTANCE_ID)  # type: ignore[arg-type]


def test_nul_in_amcs_status_reason_is_recorded_cleaned(amc: EmulatorServer, table: str) -> None:
    amc.admin.script(
        DEMO_WORKFLOW_ID, pending_seconds=0, running_seconds=1, outcome="FAILED", status_reason="bad\x00"
    )
    execution_id = submit(table)
    amc.admin.advance(10)
    with pytest.raises(AmcExecutionFailed):
        finish(table, execution_id)
    row = row_of(table, execution_id)
    assert (row["status"], row["status_reason"]) == ("failed", f"bad{NUL_REPLACEMENT}")


def test_nul_in_column_descriptions_is_recorded_cleaned(amc: EmulatorServer, table: str) -> None:
    execution_id = submit(table)
    amc.admin.advance(10)
    execution = AmcHook().get_execution(execution_id, instance_id=DEFAULT_INSTANCE_ID)
    columns = [c.model_copy(update={"description": "spend\x00(USD)"}) for c in execution.output_columns or []]
    metadata = finish(table, execution_id, output_columns=columns)
    row = row_of(table, execution_id)
    assert row["status"] == "completed" and row["row_count"] == metadata["row_count"]
    assert {c.get("description") for c in row["output_columns"]} == {f"spend{NUL_REPLACEMENT}(USD)"}
