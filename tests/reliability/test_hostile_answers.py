"""Answers from AMC are checked like user input: ids that would bend a URL path, an answer about
another execution, statuses in an unexpected case. A real HTTP server plays the hostile AMC (the
token comes from the emulator); each case ends in a clear error or the right outcome."""

from __future__ import annotations

import json
from typing import Any

import pytest
from reliability_helpers import first_event, log_entries
from reliability_registry import record

from airflow_provider_amc.client import AmcConfigError, AmcResponseError, CreateExecutionRequest
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger
from netkit import SlowServer, canned

ASKED = "11111111-2222-4333-8444-555555555555"
OTHER = "99999999-8888-4777-8666-555555555555"
MEDIA = "application/vnd.amcworkflowexecutions.v1+json"


def _execution(execution_id: str, status: str = "RUNNING") -> bytes:
    """One execution; also a one-item list page (the canned server gives every call this body)."""
    execution = {"workflowExecutionId": execution_id, "workflowId": "wf", "status": status}
    return json.dumps({**execution, "executions": [execution]}).encode()


def _hostile_amc(monkeypatch: pytest.MonkeyPatch, emulator: EmulatorServer, body: bytes) -> SlowServer:
    server = SlowServer(canned(200, body, MEDIA)).__enter__()
    conn = defaults.airflow_connection(emulator.url)
    conn["host"] = server.url  # the API is hostile; the token comes from the emulator
    conn["extra"]["max_attempts"] = 1
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))
    return server


@pytest.fixture
def hostile(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    servers: list[SlowServer] = []

    def start(body: bytes) -> SlowServer:
        servers.append(_hostile_amc(monkeypatch, emulator, body))
        return servers[-1]

    yield start
    for server in servers:
        server.__exit__(None, None, None)


def test_status_answer_about_another_execution_is_an_error(hostile: Any) -> None:
    hostile(_execution(OTHER, "SUCCEEDED"))
    with pytest.raises(AmcResponseError, match=f"answered about execution '{OTHER}', not the one asked for"):
        AmcHook().get_execution(ASKED)
    payload = first_event(
        AmcExecutionTrigger(execution_id=ASKED, poll_interval=0.05, max_consecutive_errors=2)
    )
    assert payload["status"] == "error", payload  # never "success" with another run's data
    assert OTHER in payload["message"]
    record("hostile_answers", 2)


@pytest.mark.parametrize("bad_id", ["..", "../../workflows", "a/b", "%2e%2e", "x y"])
def test_ids_from_answers_are_checked_before_any_url(hostile: Any, bad_id: str) -> None:
    server = hostile(_execution(bad_id))
    request = CreateExecutionRequest(workflow_id=defaults.DEMO_WORKFLOW_ID)
    with pytest.raises(AmcResponseError, match="is not a valid AMC id"):
        AmcHook().create_execution(request)
    with pytest.raises(AmcResponseError, match="is not a valid AMC id"):
        AmcHook().find_executions(workflow_id=defaults.DEMO_WORKFLOW_ID)
    hits = server.hits
    with pytest.raises(AmcConfigError, match=r"execution_id .* is not a valid AMC id"):
        AmcHook().get_execution(bad_id)  # an id read back (reattach, cancel-on-kill): refused locally
    assert server.hits == hits
    record("hostile_answers", 3)


@pytest.mark.parametrize("status", ["succeeded", "Succeeded", " SUCCEEDED "])
def test_statuses_are_compared_case_insensitively(hostile: Any, status: str) -> None:
    hostile(_execution(ASKED, status))
    payload = first_event(AmcExecutionTrigger(execution_id=ASKED, poll_interval=0.05))
    assert payload["status"] == "success", payload
    record("hostile_answers")


def test_the_emulator_saw_no_dot_segments(emulator: EmulatorServer) -> None:
    """Sanity: nothing above reached a path with '..' anywhere (the emulator serves the tokens)."""
    assert not [e for e in log_entries(emulator) if ".." in e["path"]]
