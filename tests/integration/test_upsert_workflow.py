"""AmcUpsertWorkflowOperator against the emulator over real HTTP (workflows as code)."""

from __future__ import annotations

import runpy
from collections.abc import Iterator
from pathlib import Path

import pytest
from airflow.sdk import DAG
from airflow.sdk.exceptions import AirflowFailException
from amc_connections import amc_connection

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.operators.workflow import AmcUpsertWorkflowOperator

pytestmark = pytest.mark.integration
INSTANCE = defaults.DEFAULT_INSTANCE_ID
WORKFLOW = "issue5_upsert_wf"
PARAM = {"name": "min_spend", "data_type": "DECIMAL", "column_type": "METRIC", "default_value": 0}
SQL = (
    "SELECT campaign, SUM(spend) AS spend FROM dsp_impressions "
    "GROUP BY campaign HAVING SUM(spend) >= CUSTOM_PARAMETER('min_spend')"
)
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def amc(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", amc_connection(emulator.url))
    yield emulator


def upsert(sql: str = SQL, **kwargs: object) -> str:
    kwargs.setdefault("input_parameters", [PARAM])
    operator = AmcUpsertWorkflowOperator(task_id="upsert", workflow_id=WORKFLOW, sql=sql, **kwargs)  # type: ignore[arg-type]
    return operator.execute({})  # type: ignore[arg-type]


def workflow_writes(server: EmulatorServer, method: str) -> int:
    return server.admin.count(method, r"/workflows(/|$)")


def test_create_then_unchanged_then_update(amc: EmulatorServer) -> None:
    assert upsert() == "created"
    assert workflow_writes(amc, "POST") == 1

    amc.admin.clear_requests()
    reformatted = SQL.replace(" FROM", "\n    FROM").replace("GROUP BY", "\n\tGROUP  BY") + " ;\n"
    assert upsert(reformatted) == "unchanged"
    assert workflow_writes(amc, "POST") == workflow_writes(amc, "PUT") == 0
    assert workflow_writes(amc, "GET") == 1

    assert upsert(SQL.replace("SUM(spend) >=", "SUM(spend) >")) == "updated"
    assert workflow_writes(amc, "PUT") == 1
    assert workflow_writes(amc, "POST") == 0


def test_update_keeps_fields_it_does_not_manage_and_changes_managed_kwargs(amc: EmulatorServer) -> None:
    assert upsert(filtered_reason_column="why_filtered") == "created"
    assert upsert(filtered_reason_column="why_filtered") == "unchanged"
    assert upsert(SQL + " ", input_schema="sandbox") == "updated"  # new managed field only
    stored = amc.state.instances[INSTANCE].workflows[WORKFLOW]
    assert stored["inputSchema"] == "sandbox"
    assert stored["filteredReasonColumn"] == "why_filtered"  # not managed by that run: kept


def test_undeclared_parameter_fails_before_any_call(amc: EmulatorServer) -> None:
    amc.admin.clear_requests()
    with pytest.raises(AirflowFailException, match="'min_spend'"):
        upsert(input_parameters=[])
    assert amc.admin.requests() == []


def test_dry_run_surfaces_a_rejection_with_amcs_reason(amc: EmulatorServer) -> None:
    reason = "Query rejected: column spend is not aggregated."
    amc.admin.script(WORKFLOW, outcome="REJECTED", status_reason=reason)
    with pytest.raises(AirflowFailException, match="REJECTED: Query rejected: column spend"):
        upsert(dry_run=True, dry_run_poll_interval=0.2, dry_run_timeout=30)
    assert amc.admin.count("POST", "/workflowExecutions$") == 1
    executions = amc.state.instances[INSTANCE].executions.values()
    assert [e.dry_run for e in executions] == [True]


def test_dry_run_that_succeeds_passes(amc: EmulatorServer) -> None:
    assert upsert(dry_run=True, dry_run_poll_interval=0.2, dry_run_timeout=30) == "created"


def test_sql_file_from_template_searchpath_matches_the_seeded_demo_workflow(amc: EmulatorServer) -> None:
    """dags/sql/demo_campaign_report.sql plus its declared parameter is exactly the seeded workflow."""
    with DAG("upsert_demo", schedule=None, template_searchpath=[str(REPO / "dags")]):
        operator = AmcUpsertWorkflowOperator(
            task_id="upsert",
            workflow_id=defaults.DEMO_WORKFLOW_ID,
            sql_file="sql/demo_campaign_report.sql",
            input_parameters=defaults.demo_workflow()["inputParameters"],
        )
    operator.render_template_fields({})  # type: ignore[arg-type]
    assert "\n" in operator.sql  # the file, rendered (the emulator's copy is one line)
    assert operator.execute({}) == "unchanged"  # type: ignore[arg-type]
    assert workflow_writes(amc, "POST") == workflow_writes(amc, "PUT") == 0


def test_example_dag_upserts_its_workflow_first(amc: EmulatorServer) -> None:
    dag = runpy.run_path(str(REPO / "dags" / "amc_daily_report.py"), run_name="example_dag")["dag"]
    task = dag.get_task("upsert_workflow")
    assert dag.get_task("submit_execution").upstream_task_ids == {"upsert_workflow"}
    task.render_template_fields({})
    assert task.execute({}) == "unchanged"  # same definition as the emulator's seeded workflow
    AmcHook().delete_workflow(defaults.DEMO_WORKFLOW_ID, instance_id=INSTANCE)
    assert task.execute({}) == "created"
