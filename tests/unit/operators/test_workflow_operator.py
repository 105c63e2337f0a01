"""Pure helpers of workflows as code, and the operator's checks before any HTTP call."""

from __future__ import annotations

import logging

import pytest
from airflow.sdk.exceptions import AirflowFailException

from airflow_provider_amc.client import Workflow
from airflow_provider_amc.operators.workflow import AmcUpsertWorkflowOperator
from airflow_provider_amc.workflows import (
    ALWAYS_MANAGED,
    check_parameters,
    custom_parameters,
    normalise_sql,
    reconcile,
)


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT CUSTOM_PARAMETER('a') FROM t", ["a"]),
        ("SELECT custom_parameter( 'b' ), CUSTOM_PARAMETER('a'), CUSTOM_PARAMETER('b')", ["b", "a"]),
        ("SELECT x -- CUSTOM_PARAMETER('in_comment')\nFROM t /* CUSTOM_PARAMETER('c2') */", []),
        ("SELECT 'CUSTOM_PARAMETER(''lit'')' FROM t", []),  # inside a string literal: not a call
        ("SELECT MY_CUSTOM_PARAMETER('no') FROM t", []),
        ("SELECT BUILT_IN_PARAMETER('TIME_WINDOW_START')", []),
    ],
)
def test_custom_parameters(sql: str, expected: list[str]) -> None:
    assert custom_parameters(sql) == expected


def test_check_parameters_reports_undeclared_and_unused() -> None:
    check = check_parameters("SELECT CUSTOM_PARAMETER('a'), CUSTOM_PARAMETER('b')", ["b", "c"])
    assert (check.undeclared, check.unused) == (["a"], ["c"])


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("  SELECT\n\ta ,  b\nFROM t ;  \n", "SELECT a , b FROM t"),
        ("SELECT 'two  spaces', \"x  y\" FROM t", "SELECT 'two  spaces', \"x  y\" FROM t"),
        ("SELECT a -- trailing ; comment\nFROM t", "SELECT a FROM t"),
        ("SELECT /* c */ a FROM t", "SELECT a FROM t"),
        ("SELECT '--not a comment' FROM t", "SELECT '--not a comment' FROM t"),
        ("SELECT a - b / c FROM t", "SELECT a - b / c FROM t"),
    ],
)
def test_normalise_sql(sql: str, expected: str) -> None:
    assert normalise_sql(sql) == expected


def wf(**fields: object) -> Workflow:
    return Workflow.model_validate({"workflowId": "w", "sqlQuery": "SELECT 1", **fields})


def test_reconcile_creates_when_missing_and_ignores_whitespace() -> None:
    wanted = wf()
    assert reconcile(None, wanted, ALWAYS_MANAGED) is wanted
    assert reconcile(wf(sqlQuery="SELECT\n  1;"), wanted, ALWAYS_MANAGED) is None


def test_reconcile_keeps_unmanaged_fields_and_drops_unknown_server_fields() -> None:
    current = wf(sqlQuery="SELECT 2", filteredReasonColumn="why", serverOnly="x", inputSchema="old")
    target = reconcile(current, wf(inputSchema="new"), (*ALWAYS_MANAGED, "input_schema"))
    assert target is not None
    body = target.to_body()
    assert body == {
        "workflowId": "w",
        "sqlQuery": "SELECT 1",
        "filteredReasonColumn": "why",
        "inputSchema": "new",
    }


def test_reconcile_sees_managed_field_changes_only() -> None:
    current = wf(filteredReasonColumn="why")
    assert reconcile(current, wf(), ALWAYS_MANAGED) is None  # not managed: not a difference
    assert reconcile(current, wf(), (*ALWAYS_MANAGED, "filtered_reason_column")) is not None
    declared = [{"name": "p", "dataType": "STRING"}]
    assert reconcile(wf(inputParameters=declared), wf(), ALWAYS_MANAGED) is not None  # removed parameter
    assert reconcile(wf(inputParameters=[]), wf(), ALWAYS_MANAGED) is None  # [] == absent


def operator(**kwargs: object) -> AmcUpsertWorkflowOperator:
    kwargs.setdefault("sql", "SELECT CUSTOM_PARAMETER('p') FROM t")
    return AmcUpsertWorkflowOperator(task_id="t", workflow_id="w", **kwargs)  # type: ignore[arg-type]


def test_exactly_one_of_sql_and_sql_file() -> None:
    with pytest.raises(ValueError, match="exactly one of sql= and sql_file="):
        AmcUpsertWorkflowOperator(task_id="t", workflow_id="w")
    with pytest.raises(ValueError, match="exactly one of sql= and sql_file="):
        operator(sql_file="x.sql")
    with pytest.raises(ValueError, match=r"must be the path of a \.sql file"):
        AmcUpsertWorkflowOperator(task_id="t", workflow_id="w", sql_file="query.txt")


def test_build_workflow_undeclared_parameter_names_it() -> None:
    with pytest.raises(AirflowFailException, match="CUSTOM_PARAMETER 'p' but input_parameters"):
        operator(input_parameters=[{"name": "q"}]).build_workflow()


def test_build_workflow_warns_about_unused_parameter(
    caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.WARNING)
    built = operator(input_parameters=[{"name": "p"}, {"name": "unused_one"}]).build_workflow()
    assert [p.name for p in built.input_parameters or []] == ["p", "unused_one"]
    logged = caplog.text + capsys.readouterr().out  # Airflow's structlog may write to stdout
    assert "declares input parameter(s) 'unused_one'" in logged


def test_build_workflow_sends_single_line_sql_and_extra_fields() -> None:
    built = operator(
        sql="SELECT x -- note\nFROM t;\n", filtered_metrics_discriminator_column="filtered"
    ).build_workflow()
    assert built.to_body() == {
        "workflowId": "w",
        "sqlQuery": "SELECT x FROM t",
        "filteredMetricsDiscriminatorColumn": "filtered",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"workflow_id": "has space"}, "workflow_id 'has space' is not a valid AMC id"),
        ({"sql": " ; -- only a comment"}, "sql is empty"),
        ({"input_parameters": [{"dataType": "STRING"}]}, r"input_parameters\[0\] is not valid"),
        ({"input_parameters": "p"}, "input_parameters must be a list"),
        ({"output_columns": [{"name": 3}]}, r"output_columns\[0\] is not valid"),
    ],
)
def test_bad_input_names_the_field(kwargs: dict[str, object], message: str) -> None:
    kwargs.setdefault("input_parameters", [{"name": "p"}])
    workflow_id = kwargs.pop("workflow_id", "w")
    op = AmcUpsertWorkflowOperator(
        task_id="t", workflow_id=workflow_id, **{"sql": "SELECT CUSTOM_PARAMETER('p')", **kwargs}
    )  # type: ignore[arg-type]
    with pytest.raises(AirflowFailException, match=message):
        op.build_workflow()
