"""Links, asset events and OpenLineage facets of a real deferred flow (emulator over HTTP, real Postgres).

submit -> the sensor defers (the links are in XCom before the deferral) -> the trigger runs to its
event -> ``execute_complete`` on a NEW sensor instance, as a resumed task is: the lineage it reports
and the asset event extra it sets come from the completion step alone, and they match the
emulator's own result summary. The events of a real Airflow run (OpenLineage file transport,
scheduler, consumer DAG) are checked in ``tests/e2e/test_ecosystem_e2e.py``.
"""

from __future__ import annotations

from airflow_env import (
    PG_TEST_DSN,
    FakeTaskInstance,
    amc_connection_env,
    apply_airflow_test_env,
    connection_var,
    postgres_connection_env,
    task_context,
)

apply_airflow_test_env()

import asyncio  # noqa: E402
import json  # noqa: E402
import threading  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import parse_qs, urlsplit  # noqa: E402

import psycopg  # noqa: E402
import pytest  # noqa: E402
from airflow.sdk import Asset  # noqa: E402
from airflow.sdk.exceptions import AirflowFailException, TaskDeferred  # noqa: E402
from airflow.sdk.execution_time.context import OutletEventAccessors  # noqa: E402
from airflow.sdk.module_loading import import_string  # noqa: E402
from psycopg import sql  # noqa: E402

from airflow_provider_amc.emulator.defaults import DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID  # noqa: E402
from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402
from airflow_provider_amc.links import EXECUTION_URL_KEY, RESULTS_URL_KEY  # noqa: E402
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator  # noqa: E402
from airflow_provider_amc.sensors.amc import AmcExecutionSensor  # noqa: E402
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator  # noqa: E402

pytestmark = pytest.mark.integration

PG_CONN_ID = "amc_eco_pg"
FAST = {"pending_seconds": 5, "running_seconds": 5}
TEMPLATE = "https://amc.example.test/instances/{instance_id}/executions/{execution_id}?wf={workflow_id}"
REPORT = Asset("amc://amcdemo0001/demo_campaign_report")


@pytest.fixture
def amc(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    env = {**amc_connection_env(emulator.url), **postgres_connection_env(PG_CONN_ID)}
    conn = json.loads(env[connection_var("amc_default")])
    conn["extra"]["console_url_template"] = TEMPLATE
    env[connection_var("amc_default")] = json.dumps(conn)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    emulator.admin.script(DEMO_WORKFLOW_ID, **FAST, rows=30, parts=2)
    return emulator


@pytest.fixture
def tables() -> Iterator[tuple[str, str]]:
    names = (f"amc_eco_exec_{uuid.uuid4().hex[:10]}", f"amc_eco_load_{uuid.uuid4().hex[:10]}")
    yield names
    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        for name in names:
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))


def submit(amc: EmulatorServer, table: str, ti: FakeTaskInstance) -> str:
    operator = AmcCreateExecutionOperator(
        task_id="submit",
        workflow_id=DEMO_WORKFLOW_ID,
        time_window_start="2026-03-01",
        time_window_end="2026-03-02",
        time_window_time_zone="Europe/Berlin",
        postgres_conn_id=PG_CONN_ID,
        table=table,
    )
    execution_id = operator.execute(task_context(ti))
    lineage = operator.get_openlineage_facets_on_complete(None)
    assert lineage.run_facets["externalQuery"].externalQueryId == execution_id
    assert lineage.run_facets["externalQuery"].source == "amc"
    assert lineage.outputs == []  # the output is not known before the execution ends
    return str(execution_id)


def sensor(table: str, execution_id: str, **kwargs: Any) -> AmcExecutionSensor:
    return AmcExecutionSensor(
        task_id="wait",
        execution_id=execution_id,
        postgres_conn_id=PG_CONN_ID,
        table=table,
        poke_interval=0.05,
        timeout=60,
        **kwargs,
    )


def run_trigger(amc: EmulatorServer, deferred: TaskDeferred) -> dict[str, Any]:
    path, kwargs = deferred.trigger.serialize()
    trigger = import_string(path)(**kwargs)

    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            return dict(event.payload)
        raise AssertionError("no event")

    timer = threading.Timer(0.2, amc.admin.advance, (60,))
    timer.start()
    try:
        return asyncio.run(first())
    finally:
        timer.join()


def test_resumed_sensor_reports_lineage_asset_extra_and_links(
    amc: EmulatorServer, tables: tuple[str, str]
) -> None:
    executions, _ = tables
    execution_id = submit(amc, executions, FakeTaskInstance(task_id="submit"))

    ti = FakeTaskInstance(task_id="wait")
    with pytest.raises(TaskDeferred) as deferred:
        sensor(executions, execution_id, outlets=[REPORT]).execute(task_context(ti))
    # Before the deferral: the execution link is in XCom; the results location is not known yet.
    expected_console = (
        f"https://amc.example.test/instances/{DEFAULT_INSTANCE_ID}/executions/{execution_id}"
        f"?wf={DEMO_WORKFLOW_ID}"
    )
    assert ti.pushed == [(EXECUTION_URL_KEY, expected_console)]

    event = run_trigger(amc, deferred.value)
    resumed = sensor(executions, execution_id, outlets=[REPORT])  # a resumed task is a new instance
    outlet_events = OutletEventAccessors()
    resumed.execute_complete(task_context(ti, outlet_events=outlet_events), event)

    summary = amc.admin.result_summary(DEFAULT_INSTANCE_ID, execution_id)
    uri = amc.admin.execution(DEFAULT_INSTANCE_ID, execution_id)["execution"]["outputS3URI"]
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    assert summary["rows"] == 30

    lineage = resumed.get_openlineage_facets_on_complete(None)
    assert lineage.run_facets["externalQuery"].externalQueryId == execution_id
    (output,) = lineage.outputs
    assert (output.namespace, output.name) == (f"s3://{bucket}", key)
    assert [field.name for field in output.facets["schema"].fields] == [c["name"] for c in summary["columns"]]
    assert all(field.type for field in output.facets["schema"].fields)
    statistics = output.outputFacets["outputStatistics"]
    assert (statistics.rowCount, statistics.size, statistics.fileCount) == (
        summary["rows"],
        summary["bytes"],
        summary["parts"],
    )

    extra = outlet_events[REPORT].extra
    assert extra["execution_id"] == execution_id
    assert (extra["instance_id"], extra["workflow_id"]) == (DEFAULT_INSTANCE_ID, DEMO_WORKFLOW_ID)
    assert (extra["row_count"], extra["size_bytes"]) == (summary["rows"], summary["bytes"])
    assert extra["output_location"] == uri
    assert extra["time_window"]["start"] == "2026-03-01T00:00:00"
    assert extra["time_window"]["time_zone"] == "Europe/Berlin"
    json.dumps(extra)  # an asset event extra must be JSON

    results_url = urlsplit(ti.pushed_value(RESULTS_URL_KEY))
    assert (results_url.scheme, results_url.netloc) == ("https", "s3.console.aws.amazon.com")
    assert results_url.path == f"/s3/buckets/{bucket}"
    assert parse_qs(results_url.query) == {"prefix": [key]}


def test_transfer_reports_the_table_and_its_row_count(amc: EmulatorServer, tables: tuple[str, str]) -> None:
    executions, target = tables
    execution_id = submit(amc, executions, FakeTaskInstance(task_id="submit"))
    ti = FakeTaskInstance(task_id="wait")
    with pytest.raises(TaskDeferred) as deferred:
        sensor(executions, execution_id).execute(task_context(ti))
    sensor(executions, execution_id).execute_complete(
        task_context(ti, outlet_events=OutletEventAccessors()), run_trigger(amc, deferred.value)
    )

    load = AmcToPostgresOperator(
        task_id="load",
        execution_id=execution_id,
        table=target,
        postgres_conn_id=PG_CONN_ID,
        executions_table=executions,
        outlets=[REPORT],
    )
    outlet_events = OutletEventAccessors()
    result = load.execute(task_context(FakeTaskInstance(task_id="load"), outlet_events=outlet_events))
    with psycopg.connect(PG_TEST_DSN) as conn:
        counted = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(target))).fetchone()
    assert counted is not None and result["rows"] == counted[0] == 30

    lineage = load.get_openlineage_facets_on_complete(None)
    assert lineage.run_facets["externalQuery"].externalQueryId == execution_id
    (table,) = lineage.outputs
    assert (table.namespace, table.name) == ("postgres://127.0.0.1:5432", f"test.public.{target}")
    assert table.outputFacets["outputStatistics"].rowCount == 30
    assert table.facets["schema"].fields[0].name == "amc_execution_id"
    (source,) = lineage.inputs
    assert source.namespace.startswith("s3://")
    extra = outlet_events[REPORT].extra
    assert (extra["execution_id"], extra["table"], extra["row_count"]) == (execution_id, target, 30)


def test_bad_console_url_template_fails_before_any_call(
    amc: EmulatorServer, tables: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = json.loads(amc_connection_env(amc.url)[connection_var("amc_default")])
    conn["extra"]["console_url_template"] = "https://amc.example.test/{execution}"
    monkeypatch.setenv(connection_var("amc_default"), json.dumps(conn))
    before = len(amc.admin.requests())
    operator = AmcCreateExecutionOperator(
        task_id="submit", workflow_id=DEMO_WORKFLOW_ID, postgres_conn_id=None, time_window_type="ALL"
    )
    with pytest.raises(AirflowFailException, match=r"console_url_template .*unknown placeholder.*execution"):
        operator.execute(task_context(FakeTaskInstance()))
    assert len(amc.admin.requests()) == before
