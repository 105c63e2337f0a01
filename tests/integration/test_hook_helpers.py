"""AmcHook helpers (discover, find_executions, iter_result_parts) against the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, timedelta

import pytest
from amc_connections import amc_connection

from airflow_provider_amc.client import CreateExecutionRequest
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook

pytestmark = pytest.mark.integration
WORKFLOW = defaults.DEMO_WORKFLOW_ID


@pytest.fixture
def hook(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[AmcHook]:
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", amc_connection(emulator.url))
    yield AmcHook()


def submit(hook: AmcHook) -> str:
    request = CreateExecutionRequest(workflow_id=WORKFLOW, time_window_type="MOST_RECENT_DAY")
    return hook.create_execution(request).workflow_execution_id


def test_discover_lists_accounts_with_their_instances(hook: AmcHook) -> None:
    (account,) = hook.discover()
    assert account["account_id"] == defaults.DEFAULT_ADVERTISER_ID
    assert {i["instance_id"] for i in account["instances"]} == {
        defaults.DEFAULT_INSTANCE_ID,
        defaults.SECOND_INSTANCE_ID,
    }


def test_find_executions_by_workflow_and_creation_time(hook: AmcHook, emulator: EmulatorServer) -> None:
    first = submit(hook)
    emulator.admin.advance(120)
    cutoff = emulator.admin.now() - timedelta(seconds=30)
    second = submit(hook)
    by_workflow = [e.workflow_execution_id for e in hook.find_executions(workflow_id=WORKFLOW)]
    assert by_workflow == [first, second]  # oldest first
    recent = hook.find_executions(created_after=cutoff.astimezone(UTC))
    assert [e.workflow_execution_id for e in recent] == [second]
    assert hook.find_executions(workflow_id=WORKFLOW, created_before=cutoff) != []


def test_iter_result_parts_names_and_streams_every_part(hook: AmcHook, emulator: EmulatorServer) -> None:
    emulator.admin.script(WORKFLOW, rows=50, parts=3)
    execution_id = submit(hook)
    emulator.admin.advance(30)
    parts = [(name, b"".join(chunks)) for name, chunks in hook.iter_result_parts(execution_id)]
    assert [name for name, _ in parts] == ["part-00000.csv", "part-00001.csv", "part-00002.csv"]
    assert sum(body.count(b"\n") - 1 for _, body in parts) == 50  # each part has its header line
