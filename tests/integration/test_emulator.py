"""The AMC emulator over real HTTP with plain ``requests`` (not the project client)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit
from zoneinfo import ZoneInfo

import pyarrow.parquet as pq
import pytest
import requests

from airflow_provider_amc.emulator import defaults as d
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = pytest.mark.integration

INSTANCE = d.DEFAULT_INSTANCE_ID
EXPLICIT = {
    "timeWindowType": "EXPLICIT",
    "timeWindowStart": "2025-01-01T00:00:00",
    "timeWindowEnd": "2025-01-08T00:00:00",
    "timeWindowTimeZone": "America/New_York",
}
TOKEN_FORM = {
    "grant_type": "refresh_token",
    "refresh_token": d.DEFAULT_REFRESH_TOKEN,
    "client_id": d.DEFAULT_CLIENT_ID,
    "client_secret": d.DEFAULT_CLIENT_SECRET,
}


class Amc:
    """Minimal hand-rolled AMC caller for these tests."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.token = requests.post(f"{server.url}/auth/o2/token", data=TOKEN_FORM, timeout=10).json()[
            "access_token"
        ]

    def headers(self, **override: str) -> dict[str, str]:
        base = {
            "Authorization": f"Bearer {self.token}",
            "Amazon-Advertising-API-ClientId": d.DEFAULT_CLIENT_ID,
            "Amazon-Advertising-API-AdvertiserId": d.DEFAULT_ADVERTISER_ID,
            "Amazon-Advertising-API-MarketplaceId": d.DEFAULT_MARKETPLACE_ID,
        }
        return {**base, **override}

    def call(self, method: str, path: str, instance: str = INSTANCE, **kw: Any) -> requests.Response:
        headers = kw.pop("headers", None) or self.headers()
        url = f"{self.server.url}/amc/reporting/{instance}{path}"
        return requests.request(method, url, headers=headers, timeout=10, **kw)

    def create(self, instance: str = INSTANCE, **body: Any) -> dict[str, Any]:
        payload = {"workflowId": d.DEMO_WORKFLOW_ID, **EXPLICIT, **body}
        response = self.call("POST", "/workflowExecutions", instance, json=payload)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def get(self, execution_id: str, instance: str = INSTANCE) -> dict[str, Any]:
        response = self.call("GET", f"/workflowExecutions/{execution_id}", instance)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def succeed(self, instance: str = INSTANCE, **body: Any) -> dict[str, Any]:
        execution = self.create(instance, **body)
        self.server.admin.advance(60)
        return self.get(execution["workflowExecutionId"], instance)

    def urls(self, execution_id: str, instance: str = INSTANCE) -> dict[str, Any]:
        response = self.call("GET", f"/workflowExecutions/{execution_id}/downloadUrls", instance)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result


@pytest.fixture
def amc(emulator: EmulatorServer) -> Amc:
    return Amc(emulator)


def _error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == str(status)
    details: str = body["details"]
    return details


# -- Login with Amazon ------------------------------------------------------------------------


def test_token_grant(emulator: EmulatorServer) -> None:
    response = requests.post(f"{emulator.url}/auth/o2/token", data=TOKEN_FORM, timeout=10)
    assert response.status_code == 200
    body = response.json()
    assert body["access_token"].startswith("Atza|") and len(body["access_token"]) >= 350
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["refresh_token"] == d.DEFAULT_REFRESH_TOKEN


@pytest.mark.parametrize(
    ("change", "status", "error"),
    [
        ({"refresh_token": "Atzr|revoked"}, 400, "invalid_grant"),
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"grant_type": "client_credentials"}, 400, "unsupported_grant_type"),
        ({"refresh_token": None}, 400, "invalid_request"),
    ],
)
def test_token_errors(emulator: EmulatorServer, change: dict[str, Any], status: int, error: str) -> None:
    form = {k: v for k, v in {**TOKEN_FORM, **change}.items() if v is not None}
    response = requests.post(f"{emulator.url}/auth/o2/token", data=form, timeout=10)
    assert response.status_code == status
    assert response.json()["error"] == error and response.json()["error_description"]


# -- API authentication -----------------------------------------------------------------------


def test_missing_and_unknown_bearer(amc: Amc) -> None:
    headers = amc.headers()
    del headers["Authorization"]
    assert _error(amc.call("GET", "/workflows", headers=headers), 401) == "Authentication failed"
    bad = amc.call("GET", "/workflows", headers=amc.headers(Authorization="Bearer Atza|nope"))
    assert _error(bad, 401) == "Authentication failed"


def test_expired_bearer_401_then_configurable_403(amc: Amc) -> None:
    assert amc.call("GET", "/workflows").status_code == 200
    amc.server.admin.advance(3601)
    assert amc.call("GET", "/workflows").status_code == 200  # lifetimes run on the wall clock
    amc.server.admin.config(scaled_lifetimes=True)
    assert _error(amc.call("GET", "/workflows"), 401) == "Authentication failed"
    amc.token = Amc(amc.server).token
    assert amc.call("GET", "/workflows").status_code == 200
    amc.server.admin.expire_tokens(status=403)
    assert _error(amc.call("GET", "/workflows"), 403) == "Unauthorized request."


def test_headers_are_case_insensitive_and_required(amc: Amc) -> None:
    lower = {k.lower(): v for k, v in amc.headers().items()}
    assert amc.call("GET", "/workflows", headers=lower).status_code == 200
    missing = amc.headers()
    del missing["Amazon-Advertising-API-MarketplaceId"]
    assert "MarketplaceId" in _error(amc.call("GET", "/workflows", headers=missing), 400)


def test_wrong_advertiser_is_403(amc: Amc) -> None:
    response = amc.call(
        "GET", "/workflows", headers=amc.headers(**{"Amazon-Advertising-API-AdvertiserId": "ENTITYOTHER"})
    )
    assert _error(response, 403) == "Unauthorized request."


def test_accounts_and_instances(amc: Amc) -> None:
    accounts = requests.get(f"{amc.server.url}/amc/accounts", headers=amc.headers(), timeout=10).json()
    assert accounts["amcAccounts"] == [
        {
            "accountId": d.DEFAULT_ADVERTISER_ID,
            "accountName": d.DEFAULT_ACCOUNT_NAME,
            "marketplaceId": d.DEFAULT_MARKETPLACE_ID,
        }
    ]
    instances = requests.get(f"{amc.server.url}/amc/instances", headers=amc.headers(), timeout=10).json()
    ids = {i["instanceId"]: i for i in instances["instances"]}
    assert set(ids) == {d.DEFAULT_INSTANCE_ID, d.SECOND_INSTANCE_ID} and "nextToken" not in instances
    assert ids[d.DEFAULT_INSTANCE_ID]["s3BucketName"] == d.DEFAULT_S3_BUCKET


# -- workflows --------------------------------------------------------------------------------


def test_create_workflow_octet_stream_then_duplicate(amc: Amc) -> None:
    body = {"workflowId": "my.report-1", "sqlQuery": "SELECT 1 AS x"}
    response = amc.call("POST", "/workflows", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream" and response.content == b"{}"
    assert response.headers["x-amz-rid"] == response.headers["x-amz-request-id"]
    assert amc.call("GET", "/workflows/my.report-1").json() == body
    assert (
        _error(amc.call("POST", "/workflows", json=body), 400)
        == "Workflow with ID my.report-1 already exists."
    )


def test_workflow_validation(amc: Amc) -> None:
    undeclared = {"workflowId": "p1", "sqlQuery": "SELECT CUSTOM_PARAMETER('region') AS r"}
    assert "undeclared parameter region" in _error(amc.call("POST", "/workflows", json=undeclared), 400)
    declared = {**undeclared, "inputParameters": [{"name": "region", "dataType": "STRING"}]}
    assert amc.call("POST", "/workflows", json=declared).status_code == 200
    assert "workflowId" in _error(
        amc.call("POST", "/workflows", json={"workflowId": "has space", "sqlQuery": "x"}), 400
    )
    assert amc.call("GET", "/workflows/nope").status_code == 404


def test_workflow_update_delete_and_list(amc: Amc) -> None:
    seeded = amc.call("GET", f"/workflows/{d.DEMO_WORKFLOW_ID}").json()
    assert "BUILT_IN_PARAMETER('TIME_WINDOW_START')" in seeded["sqlQuery"]
    changed = {**seeded, "sqlQuery": seeded["sqlQuery"] + " "}
    assert amc.call("PUT", f"/workflows/{d.DEMO_WORKFLOW_ID}", json=changed).json() == {}
    assert amc.call("GET", f"/workflows/{d.DEMO_WORKFLOW_ID}").json() == changed
    for index in range(3):
        amc.call("POST", "/workflows", json={"workflowId": f"w{index}", "sqlQuery": "SELECT 1"})
    first = amc.call("GET", "/workflows", params={"limit": 3}).json()
    second = amc.call("GET", "/workflows", params={"limit": 3, "nextToken": first["nextToken"]}).json()
    assert len(first["workflows"]) == 3 and len(second["workflows"]) == 1 and "nextToken" not in second
    assert amc.call("DELETE", "/workflows/w0").json() == {}
    assert amc.call("GET", "/workflows/w0").status_code == 404


# -- executions -------------------------------------------------------------------------------


def test_create_execution_flat_response(amc: Amc) -> None:
    response = amc.call(
        "POST",
        "/workflowExecutions",
        json={
            "workflowId": d.DEMO_WORKFLOW_ID,
            **EXPLICIT,
            "parameterValues": {"min_impressions": 10},
            "outputFormat": "CSV",
        },
        headers={**amc.headers(), "Content-Type": "application/vnd.amcworkflowexecutions.v1+json"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.amcworkflowexecutions.v1+json"
    body = response.json()
    assert body["status"] == "PENDING" and body["workflowId"] == d.DEMO_WORKFLOW_ID
    assert (
        body["timeWindowStart"] == "2025-01-01T05:00:00Z" and body["timeWindowEnd"] == "2025-01-08T05:00:00Z"
    )
    assert body["timeWindowStartOriginal"] == "2025-01-01T00:00:00"
    assert body["timeWindowTimeZoneOriginal"] == "America/New_York"
    assert body["workflowExecutionTimeoutSeconds"] == 21600 and body["parameterValues"] == {
        "min_impressions": 10
    }
    assert body["createTime"].endswith("Z") and len(body["createTime"]) == 20
    assert "outputFormat" not in body and "outputS3URI" not in body and "workflowExecution" not in body


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"timeWindowStart": "2025-01-01"}, "yyyy-MM-ddTHH:mm:ss"),
        ({"timeWindowEnd": "2024-12-01T00:00:00"}, "must be before"),
        ({"timeWindowTimeZone": "Mars/Base"}, "IANA"),
        ({"workflowExecutionTimeoutSeconds": 60}, "between 900 and 86400"),
        ({"timeWindowType": "LAST_DAY"}, "EXPLICIT, MOST_RECENT_DAY"),
        ({"outputFormat": "JSON"}, "Allowed values: CSV, PARQUET"),
        ({"workflow": {"sqlQuery": "SELECT 1"}}, "not both"),
        ({"workflowId": "missing_wf"}, "Workflow with ID missing_wf does not exist"),
    ],
)
def test_create_execution_validation(amc: Amc, change: dict[str, Any], needle: str) -> None:
    body = {"workflowId": d.DEMO_WORKFLOW_ID, **EXPLICIT, **change}
    assert needle in _error(amc.call("POST", "/workflowExecutions", json=body), 400)


def test_status_transitions_follow_the_clock(amc: Amc) -> None:
    execution_id = amc.create()["workflowExecutionId"]
    assert amc.get(execution_id)["status"] == "PENDING"
    amc.server.admin.advance(2.5)
    assert amc.get(execution_id)["status"] == "RUNNING"
    amc.server.admin.advance(5)
    done = amc.get(execution_id)
    assert done["status"] == "SUCCEEDED" and done["executionTime"] == 5
    assert done["outputS3URI"].startswith(
        f"s3://{d.DEFAULT_S3_BUCKET}/workflow={d.DEMO_WORKFLOW_ID}/schedule=adhoc/"
    )
    assert [c["name"] for c in done["outputColumns"]] == [
        "campaign",
        "event_date",
        "impressions",
        "spend",
        "last_seen",
    ]
    assert amc.succeed(d.SECOND_INSTANCE_ID)["outputS3URI"] == "N/A"


@pytest.mark.parametrize(
    ("script", "status", "reason"),
    [
        ({"outcome": "FAILED", "status_reason": "boom"}, "FAILED", "boom"),
        ({"outcome": "REJECTED"}, "REJECTED", "rejected"),
        ({"outcome": "HANG"}, "FAILED", "timed out after 900 seconds"),
    ],
)
def test_scripted_outcomes(amc: Amc, script: dict[str, Any], status: str, reason: str) -> None:
    amc.server.admin.script(d.DEMO_WORKFLOW_ID, **script)
    execution_id = amc.create(workflowExecutionTimeoutSeconds=900)["workflowExecutionId"]
    amc.server.admin.advance(60)
    assert amc.get(execution_id)["status"] == ("RUNNING" if script["outcome"] == "HANG" else status)
    amc.server.admin.advance(900)
    final = amc.get(execution_id)
    assert final["status"] == status and reason in final["statusReason"]


def test_adhoc_sql_with_undeclared_parameter_is_rejected(amc: Amc) -> None:
    body = {"workflow": {"sqlQuery": "SELECT CUSTOM_PARAMETER('x')"}, "timeWindowType": "MOST_RECENT_WEEK"}
    created = amc.call("POST", "/workflowExecutions", json=body).json()
    assert created["workflowId"].startswith("transient_") and "timeWindowStart" not in created
    amc.server.admin.advance(10)
    final = amc.get(created["workflowExecutionId"])
    assert final["status"] == "REJECTED" and "undeclared parameter x" in final["statusReason"]


def test_relative_window_is_day_aligned_48h_back(amc: Amc) -> None:
    before = amc.server.admin.now()
    created = amc.create(timeWindowType="MOST_RECENT_DAY", timeWindowTimeZone="Asia/Tokyo")
    assert "timeWindowStart" not in created and "timeWindowStartOriginal" not in created
    amc.server.admin.advance(3)
    running = amc.get(created["workflowExecutionId"])
    start = datetime.fromisoformat(running["timeWindowStart"].replace("Z", "+00:00"))
    end = datetime.fromisoformat(running["timeWindowEnd"].replace("Z", "+00:00"))
    tokyo = ZoneInfo("Asia/Tokyo")
    latest = (before - timedelta(hours=48)).astimezone(tokyo)
    midnight = latest.replace(hour=0, minute=0, second=0, microsecond=0)
    assert end.astimezone(tokyo) in (midnight, midnight + timedelta(days=1))  # create may cross midnight
    assert end - start == timedelta(days=1)


def test_clock_speed_and_advance(amc: Amc) -> None:
    before = amc.server.admin.now()
    amc.server.admin.set_speed(200)
    time.sleep(0.1)
    after_speed = amc.server.admin.now()
    assert after_speed - before >= timedelta(seconds=15)
    amc.server.admin.set_speed(1)
    offset = amc.server.admin.clock()["offset_seconds"]
    assert amc.server.admin.advance(3600)["offset_seconds"] == offset + 3600
    assert amc.server.admin.now() - after_speed >= timedelta(seconds=3600)


def test_dry_run_succeeds_quickly_without_output(amc: Amc) -> None:
    execution_id = amc.create(dryRun=True)["workflowExecutionId"]
    amc.server.admin.advance(1)
    final = amc.get(execution_id)
    assert final["status"] == "SUCCEEDED" and final["outputS3URI"] == "N/A" and final["outputColumns"] == []
    assert amc.urls(execution_id) == {"downloadUrls": [], "metadataDownloadUrls": []}


def test_cancel_then_terminal_400_and_hidden_from_list(amc: Amc) -> None:
    execution_id = amc.create()["workflowExecutionId"]
    response = amc.call("PUT", f"/workflowExecutions/{execution_id}", json={"status": "CANCELLED"})
    assert response.status_code == 200 and response.json() == {}
    assert amc.get(execution_id)["status"] == "CANCELLED"
    again = amc.call("PUT", f"/workflowExecutions/{execution_id}", json={"status": "CANCELLED"})
    assert "cannot be cancelled" in _error(again, 400)
    listed = amc.call("GET", "/workflowExecutions", params={"workflowId": d.DEMO_WORKFLOW_ID}).json()
    assert listed["executions"] == []
    shown = amc.call(
        "GET", "/workflowExecutions", params={"workflowId": d.DEMO_WORKFLOW_ID, "includeCancelled": "true"}
    )
    assert [e["workflowExecutionId"] for e in shown.json()["executions"]] == [execution_id]


def test_unknown_execution_is_400_or_configured_404(amc: Amc) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    response = amc.call("GET", f"/workflowExecutions/{missing}")
    assert _error(response, 400) == f"Workflow execution with ID {missing} does not exist."
    amc.server.admin.config(unknown_execution_status=404)
    assert amc.call("GET", f"/workflowExecutions/{missing}").status_code == 404


def test_list_pagination_and_required_filter(amc: Amc) -> None:
    created = [amc.create()["workflowExecutionId"] for _ in range(5)]
    seen: list[str] = []
    params: dict[str, Any] = {"workflowId": d.DEMO_WORKFLOW_ID, "limit": 2, "sortAscending": "true"}
    pages = 0
    while True:
        body = amc.call("GET", "/workflowExecutions", params=params).json()
        seen += [e["workflowExecutionId"] for e in body["executions"]]
        pages += 1
        if "nextToken" not in body:
            break
        params["nextToken"] = body["nextToken"]
    assert seen == created and pages == 3
    newest_first = amc.call(
        "GET", "/workflowExecutions", params={"minCreationTime": "2000-01-01T00:00:00"}
    ).json()
    assert [e["workflowExecutionId"] for e in newest_first["executions"]] == created[::-1]
    assert (
        _error(amc.call("GET", "/workflowExecutions"), 400)
        == "Must provide either workflowId or minCreationTime"
    )


def test_concurrency_limit_keeps_extra_pending(amc: Amc) -> None:
    amc.server.admin.config(concurrency_limit=1)
    first, second = (amc.create()["workflowExecutionId"] for _ in range(2))
    amc.server.admin.advance(3)
    assert (amc.get(first)["status"], amc.get(second)["status"]) == ("RUNNING", "PENDING")
    amc.server.admin.advance(5)
    assert (amc.get(first)["status"], amc.get(second)["status"]) == ("SUCCEEDED", "RUNNING")


def test_daily_quota(amc: Amc) -> None:
    amc.server.admin.config(daily_quota=1)
    amc.create()
    response = amc.call("POST", "/workflowExecutions", json={"workflowId": d.DEMO_WORKFLOW_ID, **EXPLICIT})
    assert "Daily limit of 1 ad-hoc workflow executions" in _error(response, 400)
    amc.server.admin.config(quota_status=429)
    throttled = amc.call("POST", "/workflowExecutions", json={"workflowId": d.DEMO_WORKFLOW_ID, **EXPLICIT})
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) > 0


def test_envelope_switch(amc: Amc) -> None:
    amc.server.admin.config(envelope=True)
    execution = amc.call(
        "POST", "/workflowExecutions", json={"workflowId": d.DEMO_WORKFLOW_ID, **EXPLICIT}
    ).json()
    assert execution["workflowExecution"]["status"] == "PENDING"
    assert "workflow" in amc.call("GET", f"/workflows/{d.DEMO_WORKFLOW_ID}").json()


def test_schedules_and_data_sources(amc: Amc) -> None:
    schedule = {"scheduleId": "daily1", "workflowId": d.DEMO_WORKFLOW_ID, "aggregationPeriod": "Daily"}
    assert amc.call("POST", "/schedules", json=schedule).json() == {}
    assert amc.call("GET", "/schedules/daily1").json()["aggregationPeriod"] == "Daily"
    assert "Allowed values: Daily, Weekly" in _error(
        amc.call("POST", "/schedules", json={**schedule, "aggregationPeriod": "Hourly"}), 400
    )
    assert "referenced by schedule" in _error(amc.call("DELETE", f"/workflows/{d.DEMO_WORKFLOW_ID}"), 400)
    assert amc.call("DELETE", "/schedules/daily1").json() == {}
    sources = amc.call("GET", "/dataSources").json()["dataSources"]
    assert "dsp_impressions" in {s["dataSourceId"] for s in sources}


# -- results ----------------------------------------------------------------------------------


def test_download_urls_before_success_is_400(amc: Amc) -> None:
    execution_id = amc.create()["workflowExecutionId"]
    response = amc.call("GET", f"/workflowExecutions/{execution_id}/downloadUrls")
    assert _error(response, 400) == f"Execution with ID {execution_id} is unavailable for download."


def _download(url: str) -> bytes:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return response.content


@pytest.mark.parametrize(("rows", "parts"), [(None, 1), (10, 3), (0, 4)])
def test_csv_download_matches_result_summary(amc: Amc, rows: int | None, parts: int) -> None:
    amc.server.admin.script(d.DEMO_WORKFLOW_ID, rows=rows, parts=parts)
    execution_id = amc.succeed()["workflowExecutionId"]
    summary = amc.server.admin.result_summary(INSTANCE, execution_id)
    urls = amc.urls(execution_id)
    assert all(("X-Amz-Expires", "600") in parse_qsl(urlsplit(u).query) for u in urls["downloadUrls"])
    files = [_download(url) for url in urls["downloadUrls"]]
    assert len(files) == summary["parts"] == (1 if rows == 0 else parts)
    assert [len(f) for f in files] == summary["part_bytes"]
    tables = [list(csv.reader(io.StringIO(f.decode()))) for f in files]
    assert all(t[0] == ["campaign", "event_date", "impressions", "spend", "last_seen"] for t in tables)
    assert sum(len(t) - 1 for t in tables) == summary["rows"]
    if rows is not None:
        assert summary["rows"] == rows
    metadata = json.loads(_download(urls["metadataDownloadUrls"][0]))
    assert metadata["workflowExecutionId"] == execution_id


def test_csv_has_nulls_and_quoted_commas(amc: Amc) -> None:
    amc.server.admin.script(d.DEMO_WORKFLOW_ID, rows=400)
    execution_id = amc.succeed()["workflowExecutionId"]
    text = _download(amc.urls(execution_id)["downloadUrls"][0]).decode()
    assert '"Spring Sale, ""Big"" Deals"' in text
    rows = list(csv.reader(io.StringIO(text)))[1:]
    assert any("" in row for row in rows)
    assert all(len(row[3].split(".")[1]) == 2 for row in rows if row[3])


def test_parquet_has_the_same_rows_as_csv(amc: Amc) -> None:
    amc.server.admin.script(d.DEMO_WORKFLOW_ID, rows=25, parts=2)
    csv_id = amc.succeed()["workflowExecutionId"]
    parquet_id = amc.succeed(outputFormat="PARQUET")["workflowExecutionId"]
    csv_rows = [
        row
        for url in amc.urls(csv_id)["downloadUrls"]
        for row in list(csv.reader(io.StringIO(_download(url).decode())))[1:]
    ]
    parquet_urls = amc.urls(parquet_id)["downloadUrls"]
    assert all(".parquet?" in url for url in parquet_urls)
    tables = [pq.read_table(io.BytesIO(_download(url))) for url in parquet_urls]
    parquet_rows = [row for table in tables for row in table.to_pylist()]
    assert len(parquet_rows) == len(csv_rows) == 25
    assert [r["campaign"] or "" for r in parquet_rows] == [r[0] for r in csv_rows]
    assert [str(r["spend"]) if r["spend"] is not None else "" for r in parquet_rows] == [
        r[3] for r in csv_rows
    ]
    summary = amc.server.admin.result_summary(INSTANCE, parquet_id)
    assert summary["format"] == "PARQUET" and summary["rows"] == 25


def test_download_url_expires_and_rejects_tampering(amc: Amc) -> None:
    url = amc.urls(amc.succeed()["workflowExecutionId"])["downloadUrls"][0]
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query["X-Amz-Signature"] = "0" * 64
    tampered = requests.get(f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query)}", timeout=10)
    assert tampered.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in tampered.text
    assert requests.get(url, timeout=10).status_code == 200
    amc.server.admin.advance(601)
    assert requests.get(url, timeout=10).status_code == 200  # lifetimes run on the wall clock
    amc.server.admin.config(scaled_lifetimes=True)
    expired = requests.get(url, timeout=10)
    assert expired.status_code == 403 and expired.headers["content-type"].startswith("application/xml")
    assert "<Code>AccessDenied</Code>" in expired.text and "Request has expired" in expired.text


# -- throttling and faults --------------------------------------------------------------------


def test_throttle_answers_429_with_retry_after(amc: Amc) -> None:
    amc.server.admin.throttle(rate=0.5, burst=2)
    statuses = [amc.call("GET", "/workflows") for _ in range(3)]
    assert [r.status_code for r in statuses] == [200, 200, 429]
    assert int(statuses[2].headers["Retry-After"]) >= 1 and statuses[2].json()["code"] == "429"


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_status_faults_apply_to_next_n_matching_calls(amc: Amc, status: int) -> None:
    amc.server.admin.fault("status", method="GET", path="/workflows$", count=2, status=status, retry_after=7)
    first, second, third = (amc.call("GET", "/workflows") for _ in range(3))
    assert (first.status_code, second.status_code, third.status_code) == (status, status, 200)
    if status in (429, 503):
        assert first.headers["Retry-After"] == "7"


def test_reset_fault_drops_the_connection(amc: Amc) -> None:
    amc.server.admin.fault("reset", path="/auth/o2/token")
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{amc.server.url}/auth/o2/token", data=TOKEN_FORM, timeout=10)
    assert requests.post(f"{amc.server.url}/auth/o2/token", data=TOKEN_FORM, timeout=10).status_code == 200


def test_delay_fault_triggers_client_timeout(amc: Amc) -> None:
    amc.server.admin.fault("delay", path="/workflows", delay_seconds=1.0)
    url = f"{amc.server.url}/amc/reporting/{INSTANCE}/workflows"
    with pytest.raises(requests.Timeout):
        requests.get(url, headers=amc.headers(), timeout=0.3)
    assert amc.call("GET", "/workflows").status_code == 200


def test_malformed_body_faults(amc: Amc) -> None:
    amc.server.admin.fault("truncated_json", path="/workflowExecutions")
    truncated = amc.call("POST", "/workflowExecutions", json={"workflowId": d.DEMO_WORKFLOW_ID})
    assert truncated.status_code == 200
    with pytest.raises(ValueError):
        truncated.json()
    execution_id = amc.succeed()["workflowExecutionId"]
    url = amc.urls(execution_id)["downloadUrls"][0]
    amc.server.admin.fault("html", path="^/downloads/")
    page = requests.get(url, timeout=10)
    assert page.status_code == 502 and page.headers["content-type"].startswith("text/html")


# -- request log, concurrency, CLI ------------------------------------------------------------


def test_request_log_records_calls_without_secrets(amc: Amc) -> None:
    amc.create(parameterValues={"min_impressions": 3})
    log = amc.server.admin.requests()
    token_call, create_call = log[0], log[-1]
    assert token_call["path"] == "/auth/o2/token" and token_call["body"]["client_id"] == d.DEFAULT_CLIENT_ID
    assert create_call["method"] == "POST" and create_call["status"] == 200
    assert create_call["body"]["parameterValues"] == {"min_impressions": 3}
    assert create_call["header_values"]["amazon-advertising-api-advertiserid"] == d.DEFAULT_ADVERTISER_ID
    assert "authorization" in create_call["headers"]
    dump = json.dumps(log)
    for secret in (d.DEFAULT_CLIENT_SECRET, d.DEFAULT_REFRESH_TOKEN, amc.token, amc.token[5:40]):
        assert secret not in dump
    assert amc.server.admin.count("POST", "/workflowExecutions$") == 1
    assert amc.server.admin.requests(since=create_call["seq"]) == []


def test_200_concurrent_gets(amc: Amc) -> None:
    execution_id = amc.create()["workflowExecutionId"]
    url = f"{amc.server.url}/amc/reporting/{INSTANCE}/workflowExecutions/{execution_id}"
    headers = amc.headers()
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=200) as pool:
        statuses = list(
            pool.map(lambda _: requests.get(url, headers=headers, timeout=30).status_code, range(200))
        )
    assert statuses == [200] * 200
    assert time.monotonic() - started < 15


def test_cli_prints_listening_line_and_serves() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "airflow_provider_amc.emulator", "--port", "0", "--speed", "2"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("AMC emulator listening on http://127.0.0.1:")
        url = line.rsplit(" ", 1)[1]
        assert requests.get(f"{url}/emulator/clock", timeout=10).json()["speed"] == 2.0
    finally:
        process.terminate()
        process.wait(timeout=10)
