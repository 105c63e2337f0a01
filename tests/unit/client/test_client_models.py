"""Settings, models and status mapping: validation messages, aliases, secrets in reprs."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from amc_client_fakes import CLIENT_SECRET, REFRESH_TOKEN, make_settings
from hypothesis import given
from hypothesis import strategies as st

from airflow_provider_amc.client import (
    REGIONS,
    AmcConfigError,
    CreateExecutionRequest,
    DownloadUrls,
    Workflow,
    WorkflowExecution,
)


@pytest.mark.parametrize(
    ("region", "api", "token"),
    [
        ("NA", "https://advertising-api.amazon.com", "https://api.amazon.com/auth/o2/token"),
        ("eu", "https://advertising-api-eu.amazon.com", "https://api.amazon.co.uk/auth/o2/token"),
        ("FE", "https://advertising-api-fe.amazon.com", "https://api.amazon.co.jp/auth/o2/token"),
    ],
)
def test_regions_pick_hosts(region: str, api: str, token: str) -> None:
    settings = make_settings(region=region)
    assert (settings.region, settings.api_base_url, settings.token_endpoint) == (region.upper(), api, token)


def test_overrides_win_over_region() -> None:
    settings = make_settings(
        region="EU", host="http://127.0.0.1:8765/", token_url="http://127.0.0.1:8765/auth/o2/token"
    )
    assert settings.api_base_url == "http://127.0.0.1:8765"
    assert settings.token_endpoint == "http://127.0.0.1:8765/auth/o2/token"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"region": "US"}, "region 'US' is not supported: allowed values are NA, EU, FE"),
        ({"host": "advertising-api.amazon.com"}, "host must be an http(s) URL"),
        ({"token_url": "ftp://x"}, "token_url must be an http(s) URL"),
        ({"timeout": 0}, "timeout"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"client_id": ""}, "client_id"),
        ({"refresh_token": ""}, "refresh_token: must not be empty"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_bad_settings_name_the_field(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(AmcConfigError) as info:
        make_settings(**overrides)
    assert expected in str(info.value)
    assert isinstance(info.value, ValueError)


def test_settings_secrets_hidden_even_in_errors() -> None:
    settings = make_settings()
    assert CLIENT_SECRET not in repr(settings) and REFRESH_TOKEN not in repr(settings)
    with pytest.raises(AmcConfigError) as info:
        make_settings(region="XX", client_secret="visible?")
    assert "visible?" not in str(info.value)
    assert set(REGIONS) == {"NA", "EU", "FE"}


@given(st.text(max_size=20))
def test_any_status_string_parses(status: str) -> None:
    execution = WorkflowExecution.model_validate({"workflowExecutionId": "e", "status": status})
    assert execution.status == status  # the client keeps AMC's text; lifecycle.AmcStatus reads it


def test_execution_snake_case_attributes_and_camel_aliases() -> None:
    body = {
        "workflowExecutionId": "e",
        "status": "SUCCEEDED",
        "timeWindowStartOriginal": "2024-01-20T00:00:00",
        "outputS3URI": "s3://b/k.csv",
        "invalidationOffsetSecs": 266400,
        "executionTime": 55,
        "outputColumns": [
            {"name": "imps", "columnType": "METRIC", "dataType": "DECIMAL", "precision": 38, "scale": 17}
        ],
        "validatedTime": "2024-09-25T03:11:54.792Z",
        "dataGaps": [],
        "statusReason": "ok",
    }
    execution = WorkflowExecution.model_validate(body)
    assert execution.time_window_start_original == "2024-01-20T00:00:00"
    assert execution.output_s3_uri == "s3://b/k.csv" and execution.invalidation_offset_secs == 266400
    assert execution.output_columns is not None and execution.output_columns[0].precision == 38
    assert execution.status == "SUCCEEDED"
    assert WorkflowExecution(workflow_execution_id="e", status="RUNNING").to_body() == {
        "workflowExecutionId": "e",
        "status": "RUNNING",
    }


def test_workflow_definition_ignores_server_extras() -> None:
    mine = Workflow(workflow_id="w", sql_query="SELECT 1")
    theirs = Workflow.model_validate({"workflowId": "w", "sqlQuery": "SELECT 1", "createdBy": "amc"})
    assert mine.definition() == theirs.definition() == {"workflowId": "w", "sqlQuery": "SELECT 1"}
    assert DownloadUrls.model_validate({}).download_urls == []


def explicit(**overrides: Any) -> CreateExecutionRequest:
    values: dict[str, Any] = {
        "workflow_id": "wf",
        "time_window_type": "EXPLICIT",
        "time_window_start": "2024-01-01T00:00:00",
        "time_window_end": "2024-01-02T00:00:00",
    }
    return CreateExecutionRequest(**(values | overrides))


def test_request_body_is_camel_case_without_none() -> None:
    body = explicit(
        time_window_time_zone="Europe/Berlin", parameter_values={"n": 3}, output_format="parquet"
    ).to_body()
    assert body == {
        "workflowId": "wf",
        "timeWindowType": "EXPLICIT",
        "timeWindowStart": "2024-01-01T00:00:00",
        "timeWindowEnd": "2024-01-02T00:00:00",
        "timeWindowTimeZone": "Europe/Berlin",
        "parameterValues": {"n": 3},
        "outputFormat": "PARQUET",
    }


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"workflow_id": ""}, "workflow_id"),
        ({"workflow_id": "has space"}, "workflow_id"),
        ({"time_window_type": "YESTERDAY"}, "allowed values are EXPLICIT, MOST_RECENT_DAY"),
        (
            {"output_format": "JSON"},
            "output_format: 'JSON' is not supported: allowed values are CSV, PARQUET",
        ),
        ({"time_window_start": "2024-01-01"}, "YYYY-MM-DDTHH:MM:SS"),
        ({"time_window_end": "2024-01-02T00:00:00Z"}, "YYYY-MM-DDTHH:MM:SS"),
        ({"time_window_end": None}, "needs both time_window_start and time_window_end"),
        ({"time_window_end": "2023-12-31T00:00:00"}, "must be before"),
        ({"time_window_type": "MOST_RECENT_WEEK"}, "only used with time_window_type EXPLICIT"),
        ({"time_window_time_zone": "Mars/Olympus"}, "IANA time zone"),
        ({"workflow_execution_timeout_seconds": 60}, "workflow_execution_timeout_seconds"),
        ({"workflow": {"sqlQuery": "SELECT 1"}}, "workflow"),
    ],
)
def test_bad_request_fails_naming_the_field(overrides: dict[str, Any], expected: str) -> None:
    with pytest.raises(AmcConfigError) as info:
        explicit(**overrides)
    assert expected in str(info.value)


def test_bounds_without_type_are_rejected() -> None:
    """A window with bounds but no type would silently run MOST_RECENT_DAY (amc-api.md §10.5)."""
    with pytest.raises(AmcConfigError, match="EXPLICIT"):
        CreateExecutionRequest(
            workflow_id="wf", time_window_start="2024-01-01T00:00:00", time_window_end="2024-01-02T00:00:00"
        )


def test_client_package_does_not_import_airflow() -> None:
    import subprocess
    import sys

    code = (
        "import sys, airflow_provider_amc.client as c; c.AmcClient; c.AsyncAmcClient; "
        "bad = sorted(m for m in sys.modules if m == 'airflow' or m.startswith('airflow.')); "
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_every_object_holding_a_request_has_a_safe_repr() -> None:
    """The token grant's form, the bearer header and a token answer never show in a repr."""
    from airflow_provider_amc.client.auth import token_operation
    from airflow_provider_amc.client.protocol import CallContext, HttpResponse, Send, build_request

    proxy_password = "proxy-pass-DO-NOT-LOG"
    settings = make_settings(proxies={"https": f"http://u:{proxy_password}@proxy:3128"})
    op = token_operation(settings)
    request = build_request(CallContext(settings), op, None)
    api = build_request(CallContext(settings), replace(op, kind="api"), "Atza|bearer-DO-NOT-LOG")
    answer = HttpResponse(200, {}, b'{"access_token": "Atza|answer-DO-NOT-LOG"}')
    texts = [
        repr(x) for x in (op, request, api, Send(request), Send(api), answer, settings, CallContext(settings))
    ]
    for text in texts:
        for secret in (CLIENT_SECRET, REFRESH_TOKEN, "DO-NOT-LOG", "Atzr%7C", proxy_password):
            assert secret not in text, text
