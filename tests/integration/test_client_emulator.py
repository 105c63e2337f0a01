"""The AMC client (sync and async) against the emulator over real HTTP."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from airflow_provider_amc.client import (
    AmcClient,
    AmcDownloadExpiredError,
    AmcNotFoundError,
    AmcSettings,
    AsyncAmcClient,
    CreateExecutionRequest,
    Workflow,
)
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = pytest.mark.integration
INSTANCE = defaults.DEFAULT_INSTANCE_ID
DEMO = defaults.DEMO_WORKFLOW_ID


class Driver:
    """Calls either client the same way: async methods run on one private event loop."""

    def __init__(self, client: AmcClient | AsyncAmcClient) -> None:
        self.client = client
        self.loop = asyncio.new_event_loop() if isinstance(client, AsyncAmcClient) else None

    def __getattr__(self, name: str) -> Callable[..., Any]:
        method = getattr(self.client, name)

        def run(*args: Any, **kwargs: Any) -> Any:
            result = method(*args, **kwargs)
            return (
                self.loop.run_until_complete(result) if inspect.isawaitable(result) and self.loop else result
            )

        return run

    def download(self, url: str, chunk_size: int = 65536) -> list[bytes]:
        if isinstance(self.client, AmcClient):
            return list(self.client.iter_download(url, chunk_size=chunk_size))
        client = self.client

        async def collect() -> list[bytes]:
            return [chunk async for chunk in client.iter_download(url, chunk_size=chunk_size)]

        assert self.loop is not None
        return self.loop.run_until_complete(collect())

    def close(self) -> None:
        if isinstance(self.client, AmcClient):
            self.client.close()
        elif self.loop is not None:
            self.loop.run_until_complete(self.client.aclose())
            self.loop.close()


def emulator_settings(emulator: EmulatorServer) -> AmcSettings:
    return AmcSettings(
        client_id=defaults.DEFAULT_CLIENT_ID,
        client_secret=defaults.DEFAULT_CLIENT_SECRET,
        refresh_token=defaults.DEFAULT_REFRESH_TOKEN,
        advertiser_id=defaults.DEFAULT_ADVERTISER_ID,
        marketplace_id=defaults.DEFAULT_MARKETPLACE_ID,
        host=emulator.url,
        token_url=emulator.url + "/auth/o2/token",
        instance_id=INSTANCE,
        timeout=10.0,
        backoff_base=0.01,
        backoff_max=0.05,
    )


@pytest.fixture(params=["sync", "async"])
def amc(request: pytest.FixtureRequest, emulator: EmulatorServer) -> Iterator[Driver]:
    settings = emulator_settings(emulator)
    delays: list[float] = []
    if request.param == "sync":
        client: AmcClient | AsyncAmcClient = AmcClient(settings, sleep=delays.append)
    else:

        async def record(seconds: float) -> None:
            delays.append(seconds)

        client = AsyncAmcClient(settings, sleep=record)
    driver = Driver(client)
    driver.sleeps = delays  # type: ignore[attr-defined]
    yield driver
    driver.close()


def run_demo(amc: Driver, emulator: EmulatorServer, **script: Any) -> str:
    """Create an execution of the seeded workflow and let it finish on the emulator clock."""
    if script:
        emulator.admin.script(DEMO, **script)
    request = CreateExecutionRequest(
        workflow_id=DEMO,
        time_window_type="EXPLICIT",
        time_window_start="2024-01-20T00:00:00",
        time_window_end="2024-01-25T00:00:00",
        time_window_time_zone="America/New_York",
        output_format="CSV",
    )
    execution = amc.create_execution(request)
    assert execution.status == "PENDING" and execution.workflow_id == DEMO
    return str(execution.workflow_execution_id)


def finish(amc: Driver, emulator: EmulatorServer, execution_id: str) -> Any:
    emulator.admin.advance(120)
    return amc.get_execution(execution_id)


def test_workflow_crud_and_upsert(amc: Driver) -> None:
    workflow = Workflow(
        workflow_id="it_client_wf",
        sql_query="SELECT campaign, SUM(impressions) FROM dsp_impressions GROUP BY 1",
    )
    assert amc.upsert_workflow(workflow) == "created"
    assert amc.upsert_workflow(workflow) == "unchanged"
    changed = workflow.model_copy(
        update={"sql_query": "SELECT campaign, COUNT(1) FROM dsp_impressions GROUP BY 1"}
    )
    assert amc.upsert_workflow(changed) == "updated"
    assert amc.get_workflow("it_client_wf").sql_query == changed.sql_query
    amc.update_workflow(workflow)
    assert amc.get_workflow("it_client_wf").sql_query == workflow.sql_query
    ids = [w.workflow_id for w in amc.list_workflows(page_size=1)]
    assert {"it_client_wf", DEMO} <= set(ids) and len(ids) == len(set(ids))
    amc.delete_workflow("it_client_wf")
    with pytest.raises(AmcNotFoundError):
        amc.get_workflow("it_client_wf")
    amc.create_workflow(workflow)
    assert amc.get_workflow("it_client_wf").workflow_id == "it_client_wf"


def test_execution_lifecycle_and_download(amc: Driver, emulator: EmulatorServer) -> None:
    execution_id = run_demo(amc, emulator, rows=40, parts=2)
    assert amc.get_execution(execution_id).status in ("PENDING", "RUNNING")
    done = finish(amc, emulator, execution_id)
    assert done.status == "SUCCEEDED" and done.output_columns
    urls = amc.get_download_urls(execution_id)
    assert len(urls.download_urls) == 2
    data = [b"".join(amc.download(url, chunk_size=256)) for url in urls.download_urls]
    summary = emulator.admin.result_summary(INSTANCE, execution_id)
    assert sum(map(len, data)) == summary["bytes"]
    assert all(part.startswith(b"campaign") for part in data[:1])


def test_list_executions_paginates(amc: Driver, emulator: EmulatorServer) -> None:
    created = {run_demo(amc, emulator) for _ in range(3)}
    since = emulator.admin.requests()[-1]["seq"]
    found = amc.list_executions(workflow_id=DEMO, page_size=1)
    assert created <= {e.workflow_execution_id for e in found}
    assert emulator.admin.count("GET", r"/workflowExecutions$", since=since) >= 3
    assert len(amc.list_executions(workflow_id=DEMO, page_size=1, max_items=2)) == 2


def test_cancel_then_already_terminal(amc: Driver, emulator: EmulatorServer) -> None:
    execution_id = run_demo(amc, emulator)
    assert amc.cancel_execution(execution_id) is True
    assert amc.get_execution(execution_id).status == "CANCELLED"
    assert amc.cancel_execution(execution_id) is False
    assert execution_id not in {e.workflow_execution_id for e in amc.list_executions(workflow_id=DEMO)}
    listed = amc.list_executions(workflow_id=DEMO, include_cancelled=True)
    assert execution_id in {e.workflow_execution_id for e in listed}


def test_expired_download_url(amc: Driver, emulator: EmulatorServer) -> None:
    emulator.admin.config(scaled_lifetimes=True)  # expire URLs by moving the emulated clock
    execution_id = run_demo(amc, emulator)
    finish(amc, emulator, execution_id)
    (url, *_) = amc.get_download_urls(execution_id).download_urls
    emulator.admin.advance(601)
    with pytest.raises(AmcDownloadExpiredError):
        amc.download(url)
    fresh = amc.get_download_urls(execution_id).download_urls[0]
    assert b"".join(amc.download(fresh))


def test_throttled_then_success_honours_retry_after(amc: Driver, emulator: EmulatorServer) -> None:
    execution_id = run_demo(amc, emulator)
    emulator.admin.fault(
        "status", method="GET", path="/workflowExecutions/", status=429, retry_after=1, count=1
    )
    assert amc.get_execution(execution_id).workflow_execution_id == execution_id
    assert amc.sleeps == [1.0]


def test_server_error_retried_for_get(amc: Driver, emulator: EmulatorServer) -> None:
    emulator.admin.fault("status", method="GET", path="/workflows$", status=503, count=2)
    assert DEMO in {w.workflow_id for w in amc.list_workflows()}
    assert len(amc.sleeps) == 2


def test_expired_token_is_refreshed(amc: Driver, emulator: EmulatorServer) -> None:
    first = amc.get_access_token()
    emulator.admin.expire_tokens()
    assert DEMO in {w.workflow_id for w in amc.list_workflows()}
    assert amc.get_access_token() != first


def test_enveloped_responses_and_unknown_execution(amc: Driver, emulator: EmulatorServer) -> None:
    execution_id = run_demo(amc, emulator)
    emulator.admin.config(envelope=True)
    assert amc.get_execution(execution_id).workflow_execution_id == execution_id
    assert amc.get_workflow(DEMO).workflow_id == DEMO
    with pytest.raises(AmcNotFoundError):
        amc.get_execution("00000000-0000-4000-8000-000000000000")


def test_accounts_and_instances(amc: Driver) -> None:
    accounts = amc.list_accounts()
    assert (defaults.DEFAULT_ADVERTISER_ID, defaults.DEFAULT_MARKETPLACE_ID) in {
        (a.account_id, a.marketplace_id) for a in accounts
    }
    instances = {i.instance_id for i in amc.list_instances()}
    assert {defaults.DEFAULT_INSTANCE_ID, defaults.SECOND_INSTANCE_ID} <= instances
