"""Every answer of the emulator against Amazon's OpenAPI files: the spec walk.

Each operation of the reporting spec (17) plus ``GET /amc/accounts`` and ``GET /amc/instances``
of the administration spec is called over HTTP for a success answer, an operation-specific error
and the errors every operation declares (401, 403, 429, 500). Each answer's status must be one
the operation declares, its Content-Type the media type declared for that status, and its body
valid against the declared schema. The only departures are the ones ../shared/amc-api.md
documents for the real service (and docs/emulator.md lists): single objects are flat (§0),
``createWorkflow`` answers ``application/octet-stream`` (§2.2), an unknown execution id is a 400
(§3.2.4 - a status the spec declares too).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

import openapi_spec as spec
from airflow_provider_amc.emulator import defaults as d
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = pytest.mark.integration

INSTANCE = d.DEFAULT_INSTANCE_ID
WORKFLOW = "spec_walk_workflow"
SCHEDULE = "spec_walk_schedule"
NEW_WORKFLOW = {"workflowId": "spec_walk_new", "sqlQuery": "SELECT 1 AS one FROM dsp_impressions"}
EXPLICIT = {
    "timeWindowType": "EXPLICIT",
    "timeWindowStart": "2026-01-01T00:00:00",
    "timeWindowEnd": "2026-01-02T00:00:00",
    "timeWindowTimeZone": "UTC",
}

#: amc-api.md §0: the live API answers these objects flat; the spec wraps them in one key.
FLAT_OBJECTS = {
    "CreateWorkflowExecutionResponse": "workflowExecution",
    "GetWorkflowExecutionResponse": "workflowExecution",
    "GetWorkflowResponse": "workflow",
    "GetScheduleResponse": "schedule",
    "GetDataSourceResponse": "dataSource",
}
#: amc-api.md §2.2 and §10.13: POST /workflows answers application/octet-stream with body {}.
MEDIA_TYPE_EXCEPTIONS = {("createWorkflow", 200): "application/octet-stream"}


class Walk:
    """Calls on one emulator, with a valid token, a workflow, a schedule and two executions."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        form = {
            "grant_type": "refresh_token",
            "refresh_token": d.DEFAULT_REFRESH_TOKEN,
            "client_id": d.DEFAULT_CLIENT_ID,
            "client_secret": d.DEFAULT_CLIENT_SECRET,
        }
        token = requests.post(f"{server.url}/auth/o2/token", data=form, timeout=10).json()["access_token"]
        self.good_headers = {
            "Authorization": f"Bearer {token}",
            "Amazon-Advertising-API-ClientId": d.DEFAULT_CLIENT_ID,
            "Amazon-Advertising-API-AdvertiserId": d.DEFAULT_ADVERTISER_ID,
            "Amazon-Advertising-API-MarketplaceId": d.DEFAULT_MARKETPLACE_ID,
        }
        self.ok(
            "POST",
            "/workflows",
            {
                "workflowId": WORKFLOW,
                "sqlQuery": d.DEMO_WORKFLOW_SQL.replace(f"CUSTOM_PARAMETER('{d.DEMO_PARAMETER_NAME}')", "0"),
            },
        )
        self.ok(
            "POST",
            "/schedules",
            {"scheduleId": SCHEDULE, "workflowId": WORKFLOW, "aggregationPeriod": "Daily"},
        )
        self.succeeded = self.ok("POST", "/workflowExecutions", {"workflowId": WORKFLOW, **EXPLICIT})
        server.admin.advance(60)
        self.pending = self.ok("POST", "/workflowExecutions", {"workflowId": WORKFLOW, **EXPLICIT})

    def url(self, path: str) -> str:
        return self.server.url + (path if path.startswith("/amc/") else f"/amc/reporting/{INSTANCE}{path}")

    def call(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> requests.Response:
        sent = self.good_headers if headers is None else headers
        return requests.request(method, self.url(path), json=body, headers=sent, timeout=10)

    def ok(self, method: str, path: str, body: Any = None) -> str:
        response = self.call(method, path, body)
        assert response.status_code == 200, response.text
        return str(response.json().get("workflowExecutionId", ""))


@dataclass(frozen=True)
class Case:
    """How to call one operation: its path and body for a success, and an operation-specific error."""

    path: Callable[[Walk], str]
    body: Callable[[Walk], Any] = lambda _: None
    error_path: Callable[[Walk], str] | None = None
    error_body: Callable[[Walk], Any] = lambda _: None
    error_status: int = 400


def _fixed(path: str) -> Callable[[Walk], str]:
    return lambda _: path


EXECUTION = "/workflowExecutions/{}"
CASES: dict[str, Case] = {
    "listDataSources": Case(_fixed("/dataSources"), error_path=_fixed("/dataSources?limit=0")),
    "getDataSource": Case(
        _fixed("/dataSources/dsp_impressions"), error_path=_fixed("/dataSources/nope"), error_status=404
    ),
    "listSchedules": Case(_fixed("/schedules"), error_path=_fixed("/schedules?nextToken=%%%")),
    "createSchedule": Case(
        _fixed("/schedules"),
        body=lambda _: {
            "scheduleId": "spec_walk_other",
            "workflowId": WORKFLOW,
            "aggregationPeriod": "Weekly",
        },
        error_body=lambda _: {"scheduleId": "x", "workflowId": WORKFLOW, "aggregationPeriod": "Hourly"},
    ),
    "getSchedule": Case(
        _fixed(f"/schedules/{SCHEDULE}"), error_path=_fixed("/schedules/nope"), error_status=404
    ),
    "updateSchedule": Case(
        _fixed(f"/schedules/{SCHEDULE}"),
        body=lambda _: {"scheduleId": SCHEDULE, "workflowId": WORKFLOW, "aggregationPeriod": "Weekly"},
        error_body=lambda _: {"scheduleId": SCHEDULE, "workflowId": WORKFLOW, "aggregationHourUtc": 24},
    ),
    "deleteSchedule": Case(
        _fixed(f"/schedules/{SCHEDULE}"), error_path=_fixed("/schedules/nope"), error_status=404
    ),
    "listWorkflowExecutions": Case(
        _fixed(f"/workflowExecutions?workflowId={WORKFLOW}"), error_path=_fixed("/workflowExecutions")
    ),
    "createWorkflowExecution": Case(
        _fixed("/workflowExecutions"),
        body=lambda _: {"workflowId": WORKFLOW, **EXPLICIT},
        error_body=lambda _: {"workflowId": WORKFLOW, "timeWindowType": "YESTERDAY"},
    ),
    "getWorkflowExecution": Case(
        lambda walk: EXECUTION.format(walk.succeeded), error_path=_fixed(EXECUTION.format("nope"))
    ),
    "UpdateWorkflowExecution": Case(
        lambda walk: EXECUTION.format(walk.pending),
        body=lambda _: {"status": "CANCELLED"},
        error_path=lambda walk: EXECUTION.format(walk.succeeded),
        error_body=lambda _: {"status": "CANCELLED"},
    ),
    "getWorkflowExecutionDownloadUrls": Case(
        lambda walk: EXECUTION.format(walk.succeeded) + "/downloadUrls",
        error_path=lambda walk: EXECUTION.format(walk.pending) + "/downloadUrls",
    ),
    "listWorkflows": Case(_fixed("/workflows"), error_path=_fixed("/workflows?limit=101")),
    "createWorkflow": Case(
        _fixed("/workflows"),
        body=lambda _: NEW_WORKFLOW,
        error_body=lambda _: {"workflowId": WORKFLOW, "sqlQuery": "SELECT 1"},
    ),
    "getWorkflow": Case(
        _fixed(f"/workflows/{WORKFLOW}"), error_path=_fixed("/workflows/nope"), error_status=404
    ),
    "updateWorkflow": Case(
        _fixed(f"/workflows/{WORKFLOW}"),
        body=lambda _: {"workflowId": WORKFLOW, "sqlQuery": "SELECT 2 AS two FROM dsp_impressions"},
        error_path=_fixed("/workflows/nope"),
        error_body=lambda _: {"workflowId": "nope", "sqlQuery": "SELECT 1"},
        error_status=404,
    ),
    "deleteWorkflow": Case(
        _fixed("/workflows/spec_walk_unused"), error_path=_fixed(f"/workflows/{WORKFLOW}")
    ),
    "AmcpLinkListAmcAccounts": Case(_fixed("/amc/accounts")),
    "listInstances": Case(_fixed("/amc/instances")),
}
#: The administration operations the emulator serves (the others are out of its scope).
ADMIN_OPERATIONS = ("AmcpLinkListAmcAccounts", "listInstances")


def walked_operations() -> list[spec.SpecOperation]:
    reporting = list(spec.operations(spec.REPORTING_SPEC))
    admin = [op for op in spec.operations(spec.ADMIN_SPEC) if op.operation_id in ADMIN_OPERATIONS]
    return reporting + admin


def check_answer(op: spec.SpecOperation, response: requests.Response, status: int) -> None:
    """Status, media type and body of one answer against what ``op`` declares."""
    label = f"{op.operation_id} -> {response.status_code}: {response.text[:300]}"
    assert response.status_code == status, label
    assert status in op.statuses(), f"{op.operation_id} does not declare HTTP {status}"
    media_type = MEDIA_TYPE_EXCEPTIONS.get((op.operation_id, status), op.media_type(status))
    assert response.headers["content-type"] == media_type, label
    body = response.json()
    schema_name = op.schema_name(status)
    if schema_name in FLAT_OBJECTS:
        key = FLAT_OBJECTS[schema_name]
        assert key not in body, f"{op.operation_id}: the live API answers flat (amc-api.md §0)"
        validator = spec.schema_validator(op.spec, schema_name, "properties", key)
    else:
        validator = op.validator(status)
    assert spec.errors_of(validator, body) == [], label


@pytest.fixture
def walk(emulator: EmulatorServer) -> Walk:
    return Walk(emulator)


def test_the_walk_covers_every_reporting_operation() -> None:
    reporting = {op.operation_id for op in spec.operations(spec.REPORTING_SPEC)}
    assert len(reporting) == 17
    assert reporting | set(ADMIN_OPERATIONS) == set(CASES)


@pytest.mark.parametrize("op", walked_operations(), ids=lambda op: op.operation_id)
def test_success_answer_matches_the_spec(walk: Walk, op: spec.SpecOperation) -> None:
    case = CASES[op.operation_id]
    if op.operation_id == "deleteWorkflow":
        walk.ok("POST", "/workflows", {"workflowId": "spec_walk_unused", "sqlQuery": "SELECT 1"})
    response = walk.call(op.method, case.path(walk), case.body(walk))
    check_answer(op, response, 200)


@pytest.mark.parametrize("op", walked_operations(), ids=lambda op: op.operation_id)
def test_operation_error_answer_matches_the_spec(walk: Walk, op: spec.SpecOperation) -> None:
    case = CASES[op.operation_id]
    path = (case.error_path or case.path)(walk)
    if op.path == "/amc/accounts":
        headers = {k: v for k, v in walk.good_headers.items() if "ClientId" not in k}
    elif op.path == "/amc/instances":
        headers = {k: v for k, v in walk.good_headers.items() if "AdvertiserId" not in k}
    else:
        headers = None
    response = walk.call(op.method, path, case.error_body(walk), headers)
    check_answer(op, response, case.error_status)


def _unauthenticated(walk: Walk) -> dict[str, str]:
    return {k: v for k, v in walk.good_headers.items() if k != "Authorization"}


def _other_account(walk: Walk) -> dict[str, str]:
    return {
        **walk.good_headers,
        "Amazon-Advertising-API-ClientId": "amzn1.application-oa2-client.other",
        "Amazon-Advertising-API-AdvertiserId": "ENTITYSOMEONEELSE",
    }


def _fault(status: int) -> Callable[[Walk], None]:
    def arrange(walk: Walk) -> None:
        walk.server.admin.fault("status", status=status, retry_after=1)

    return arrange


@pytest.mark.parametrize("op", walked_operations(), ids=lambda op: op.operation_id)
@pytest.mark.parametrize(
    ("status", "arrange"),
    [(401, _unauthenticated), (403, _other_account), (429, _fault(429)), (500, _fault(500))],
    ids=["401", "403", "429", "500"],
)
def test_common_error_answers_match_the_spec(
    walk: Walk, op: spec.SpecOperation, status: int, arrange: Callable[[Walk], dict[str, str] | None]
) -> None:
    case = CASES[op.operation_id]
    headers = arrange(walk)
    response = walk.call(op.method, case.path(walk), case.body(walk), headers)
    check_answer(op, response, status)


@pytest.mark.parametrize(
    "op",
    [
        op
        for op in walked_operations()
        if op.raw["responses"]["200"]["content"] and op.schema_name(200) in FLAT_OBJECTS
    ],
    ids=lambda op: op.operation_id,
)
def test_envelope_switch_answers_the_spec_shape(walk: Walk, op: spec.SpecOperation) -> None:
    walk.server.admin.config(envelope=True)
    case = CASES[op.operation_id]
    response = walk.call(op.method, case.path(walk), case.body(walk))
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {FLAT_OBJECTS[op.schema_name(200)]}
    assert spec.errors_of(op.validator(200), body) == []
