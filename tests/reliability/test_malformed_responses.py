"""Malformed AMC answers (truncated JSON, HTML error pages, missing fields, unknown statuses, a
download URL that 403s) end in clear errors and never hang."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests_mock as rm
from reliability_helpers import (
    CREATE_PATH,
    DOWNLOAD_PATH,
    STATUS_PATH,
    account_faults,
    context,
    create_operator,
    fast_trigger,
    finish_executions,
    first_event,
    log_entries,
    sensor,
    within,
)
from reliability_registry import record

from airflow_env import InMemoryTaskStateStore
from airflow_provider_amc.client import AmcDownloadExpiredError, AmcResponseError
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.lifecycle import normalise_status
from airflow_provider_amc.operators.amc import STATE_KEY

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("fast_retries")]


def submit(emulator: EmulatorServer) -> str:
    return str(create_operator().execute(context()))


@pytest.mark.parametrize("kind", ["truncated_json", "html"])
def test_malformed_status_answer_is_retried_then_clear(amc_env: EmulatorServer, kind: str) -> None:
    execution_id = submit(amc_env)
    finish_executions(amc_env)
    amc_env.admin.fault(kind, method="GET", path=STATUS_PATH, count=50)
    with pytest.raises(Exception) as info:
        within(30, lambda: sensor(execution_id).poke(context()))
    message = str(info.value)
    assert "workflowExecutions" in message and ("JSON" in message or "502" in message), message
    account_faults(amc_env)
    record("clear_failures")


@pytest.mark.parametrize("kind", ["truncated_json", "html"])
def test_malformed_status_answer_in_trigger_gives_error_event(amc_env: EmulatorServer, kind: str) -> None:
    execution_id = submit(amc_env)
    amc_env.admin.fault(kind, method="GET", path=STATUS_PATH, count=50)
    event = first_event(fast_trigger(execution_id, max_consecutive_errors=2), timeout=30)
    assert event["status"] == "error" and event["message"], event
    account_faults(amc_env)
    record("clear_failures")


def test_truncated_create_answer_fails_without_resubmitting(amc_env: EmulatorServer) -> None:
    amc_env.admin.fault("truncated_json", method="POST", path=CREATE_PATH, count=1)
    store = InMemoryTaskStateStore()
    with pytest.raises(AmcResponseError, match="not valid JSON"):
        within(20, lambda: create_operator().execute(context(store)))
    # An unreadable 2xx answer may mean AMC created it: the marker stays for the retry's lookup
    # (a refusal, which created nothing, is marked so that no lookup happens after a wait).
    marker = store.get(STATE_KEY)
    assert marker["submitted_at"] and not marker.get("refused") and not marker.get("execution_id")
    account_faults(amc_env)
    record("clear_failures")


def test_download_403_gets_fresh_urls_once_then_clear_error(amc_env: EmulatorServer) -> None:
    execution_id = submit(amc_env)
    finish_executions(amc_env)
    task = sensor(execution_id)
    client = task.hook.client  # the client owns the result-file rules (refetch of an expired URL)
    real_urls = client.get_download_urls

    def tampered(*args: Any, **kwargs: Any) -> Any:
        urls = real_urls(*args, **kwargs)
        bad = [url.replace("X-Amz-Signature=", "X-Amz-Signature=00") for url in urls.download_urls]
        return urls.model_copy(update={"download_urls": bad})

    client.get_download_urls = tampered  # type: ignore[method-assign]  # every URL is refused with 403
    with pytest.raises(AmcDownloadExpiredError, match="403"):
        within(30, lambda: task.poke(context()))
    refused = [entry for entry in log_entries(amc_env, "GET", DOWNLOAD_PATH) if entry["status"] == 403]
    assert len(refused) == 2  # the first part, then once more with fresh URLs: no loop
    record("faults_injected")
    record("clear_failures")


# ---- shapes AMC never documented: mocked answers (unit style) ---------------------------------------
API = "https://amc.malformed.test"
STATUS_URL = f"{API}/amc/reporting/amcdemo0001/workflowExecutions/e1"


@pytest.fixture
def mocked_amc(monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow_env import amc_connection_env

    for name, value in amc_connection_env(API).items():
        monkeypatch.setenv(name, value)
    with rm.Mocker() as mocker:
        mocker.post(f"{API}/auth/o2/token", json={"access_token": "Atza|m", "expires_in": 3600})
        yield mocker


@pytest.mark.parametrize(
    "body",
    [{}, {"status": "SUCCEEDED"}, {"workflowExecutionId": "e1"}, [], "SUCCEEDED", {"workflowExecutionId": 5}],
    ids=["empty", "no-id", "no-status", "list", "string", "bad-type"],
)
def test_missing_fields_give_a_clear_response_error(mocked_amc: rm.Mocker, body: Any) -> None:
    mocked_amc.get(STATUS_URL, text=json.dumps(body))
    with pytest.raises(AmcResponseError, match=r"unexpected body|not valid"):
        within(10, lambda: sensor("e1").poke(context()))
    record("bad_inputs")


def test_unknown_status_is_treated_as_running_not_as_done(mocked_amc: rm.Mocker) -> None:
    mocked_amc.get(STATUS_URL, json={"workflowExecutionId": "e1", "workflowId": "w", "status": "QUEUED_V2"})
    assert within(10, lambda: sensor("e1").poke(context())) is False
    assert normalise_status("QUEUED_V2") == "running"
    record("bad_inputs")
