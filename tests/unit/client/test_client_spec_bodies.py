"""Request bodies validate against the JSON schemas of Amazon's OpenAPI file.

The spec lives outside the project (``../shared/spec`` next to the repository, or ``$AMC_SPEC_DIR``);
the tests skip with a clear message only when that folder is absent.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests_mock as rm
from amc_client_fakes import ACCESS_TOKEN, REPORTING, TOKEN_URL, execution_json
from jsonschema import Draft7Validator

import openapi_spec
from airflow_provider_amc.client import (
    OUTPUT_FORMAT_FIELD,
    AmcClient,
    AmcSettings,
    CreateExecutionRequest,
    InputParameter,
    OutputColumn,
    OutputFormat,
    Workflow,
)


def load_spec() -> dict[str, Any]:
    return openapi_spec.load(openapi_spec.REPORTING_SPEC)


def validator(schema_name: str) -> Draft7Validator:
    return openapi_spec.schema_validator(openapi_spec.REPORTING_SPEC, schema_name)


def undeclared_keys(body: dict[str, Any], schema_name: str) -> set[str]:
    return set(body) - set(load_spec()["components"]["schemas"][schema_name]["properties"])


def assert_valid(body: dict[str, Any], schema_name: str) -> None:
    errors = [f"{list(e.path)}: {e.message}" for e in validator(schema_name).iter_errors(body)]
    assert errors == [], errors


FULL_WORKFLOW = Workflow(
    workflow_id="campaign_report.v2",
    sql_query="SELECT campaign, SUM(impressions) AS imps FROM dsp_impressions GROUP BY 1",
    input_parameters=[
        InputParameter(name="p", data_type="STRING", column_type="DIMENSION", default_value="x")
    ],
    output_columns=[OutputColumn(name="imps", column_type="METRIC", data_type="LONG")],
    output_format=OutputFormat(separator_character=",", quote_character='"', escape_character="\\"),
    privacy_filtering_behavior="REMOVE_ROWS",
    filtered_metrics_discriminator_column="filtered",
    input_schema="sandbox",
)


def sent_bodies(action: Any, method: str) -> list[dict[str, Any]]:
    """Run ``action`` against a mocked AMC and return the JSON bodies of ``method`` calls."""
    settings = AmcSettings(
        client_id="c",
        client_secret="s",
        refresh_token="r",
        advertiser_id="E",
        marketplace_id="M",
        instance_id="amcunit0001",
    )
    with rm.Mocker() as mock:
        mock.register_uri(rm.ANY, rm.ANY, json=execution_json())  # later registrations match first
        mock.post(TOKEN_URL, json={"access_token": ACCESS_TOKEN, "expires_in": 3600})
        action(AmcClient(settings))
        return [r.json() for r in mock.request_history if r.method == method and r.url.startswith(REPORTING)]


@pytest.mark.parametrize(
    "request_",
    [
        CreateExecutionRequest(
            workflow_id="wf",
            time_window_type="EXPLICIT",
            time_window_start="2024-01-20T00:00:00",
            time_window_end="2024-01-25T00:00:00",
            time_window_time_zone="America/New_York",
            parameter_values={"campaign": "c1"},
            output_format="PARQUET",
            workflow_execution_timeout_seconds=3600,
            dry_run=False,
            ignore_data_gaps=True,
            require_synthetic_data=False,
        ),
        CreateExecutionRequest(workflow_id="wf", time_window_type="MOST_RECENT_WEEK"),
    ],
)
def test_create_execution_body_matches_spec(request_: CreateExecutionRequest) -> None:
    (body,) = sent_bodies(lambda c: c.create_execution(request_), "POST")
    assert "workflow" not in body and "sqlQuery" not in body, "a saved workflow is executed, never ad-hoc SQL"
    documented = {k: v for k, v in body.items() if k not in (OUTPUT_FORMAT_FIELD, "ignoreDataGaps")}
    assert_valid(documented, "CreateWorkflowExecutionRequest")
    expected_extra = {OUTPUT_FORMAT_FIELD} if request_.output_format else set()
    expected_extra |= {"ignoreDataGaps"} if request_.ignore_data_gaps is not None else set()
    assert undeclared_keys(body, "CreateWorkflowExecutionRequest") == expected_extra


def test_output_format_is_the_only_undocumented_field_of_a_typical_request() -> None:
    request = CreateExecutionRequest(workflow_id="wf", time_window_type="ALL", output_format="csv")
    (body,) = sent_bodies(lambda c: c.create_execution(request), "POST")
    assert undeclared_keys(body, "CreateWorkflowExecutionRequest") == {"outputFormat"}
    assert body["outputFormat"] == "CSV"


@pytest.mark.parametrize("method", ["create_workflow", "update_workflow"])
def test_workflow_bodies_match_spec(method: str) -> None:
    verb = "POST" if method == "create_workflow" else "PUT"
    (body,) = sent_bodies(lambda c: getattr(c, method)(FULL_WORKFLOW), verb)
    assert_valid(body, "Workflow")
    assert undeclared_keys(body, "Workflow") == set()
    assert body["workflowId"] == "campaign_report.v2" and body["outputFormat"]["separatorCharacter"] == ","


def test_cancel_body_matches_spec() -> None:
    (body,) = sent_bodies(lambda c: c.cancel_execution("e-1"), "PUT")
    assert body == {"status": "CANCELLED"}
    assert_valid(body, "WorkflowExecution")


def test_validator_rejects_a_wrong_body() -> None:
    """Guard against a validator that accepts everything (e.g. an unresolved $ref)."""
    errors = list(validator("CreateWorkflowExecutionRequest").iter_errors({"timeWindowType": "YESTERDAY"}))
    assert errors and "YESTERDAY" in errors[0].message
