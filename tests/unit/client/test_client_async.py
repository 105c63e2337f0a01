"""AsyncAmcClient (aiohttp) against a real loopback aiohttp server (no response mocking)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from amc_client_fakes import (
    ADVERTISER_ID,
    CLIENT_ID,
    INSTANCE_ID,
    MARKETPLACE_ID,
    FakeAmc,
    Reply,
    execution_json,
    fake_settings,
)

from airflow_provider_amc.client import (
    AmcAuthError,
    AmcDownloadExpiredError,
    AmcNotFoundError,
    AmcTransportError,
    AsyncAmcClient,
    CreateExecutionRequest,
    Workflow,
)

EXECUTIONS = f"/amc/reporting/{INSTANCE_ID}/workflowExecutions"
EXECUTION = f"{EXECUTIONS}/e-1"


def make_client(fake: FakeAmc, sleeps: list[float] | None = None, **settings: Any) -> AsyncAmcClient:
    async def record_sleep(seconds: float) -> None:
        if sleeps is not None:
            sleeps.append(seconds)

    return AsyncAmcClient(fake_settings(fake, **settings), sleep=record_sleep, jitter=lambda cap: cap)


async def test_headers_and_lazy_session(fake_amc: FakeAmc) -> None:
    fake_amc.script("GET", EXECUTION, Reply(body=execution_json(status="RUNNING")))
    client = make_client(fake_amc)
    assert client._session is None, "the aiohttp session is created inside the running loop, on first use"
    async with client:
        assert (await client.get_execution("e-1")).status == "RUNNING"
    assert client._session is None
    (call,) = fake_amc.calls("GET", EXECUTION)
    assert call.headers["Amazon-Advertising-API-ClientId"] == CLIENT_ID
    assert call.headers["Authorization"] == "Bearer Atza|token-1"
    assert call.headers["Amazon-Advertising-API-AdvertiserId"] == ADVERTISER_ID
    assert call.headers["Amazon-Advertising-API-MarketplaceId"] == MARKETPLACE_ID
    assert call.headers["Accept"] == "application/vnd.amcworkflowexecutions.v1+json"


async def test_token_shared_by_many_clients(fake_amc: FakeAmc) -> None:
    fake_amc.script("GET", EXECUTION, Reply(body=execution_json()))
    clients = [make_client(fake_amc) for _ in range(5)]
    for client in clients:
        for _ in range(3):
            await client.get_execution("e-1")
    await asyncio.gather(*(c.aclose() for c in clients))
    assert len(fake_amc.token_requests) == 1
    assert len(fake_amc.calls("GET", EXECUTION)) == 15


async def test_200_concurrent_calls_make_one_token_request(fake_amc: FakeAmc) -> None:
    fake_amc.token_delay = 0.05  # every coroutine arrives while the first fetch is in flight
    fake_amc.script("GET", EXECUTION, Reply(body=execution_json()))
    clients = [make_client(fake_amc) for _ in range(4)]
    results = await asyncio.gather(*(clients[i % 4].get_execution("e-1") for i in range(200)))
    await asyncio.gather(*(c.aclose() for c in clients))
    assert len(results) == 200
    assert len(fake_amc.token_requests) == 1


@pytest.mark.parametrize("status", [401, 403])
async def test_refresh_on_refused_token(fake_amc: FakeAmc, status: int) -> None:
    fake_amc.script("GET", EXECUTION, Reply(status, {"code": str(status)}), Reply(body=execution_json()))
    async with make_client(fake_amc) as client:
        await client.get_execution("e-1")
    assert [c.headers["Authorization"] for c in fake_amc.calls("GET", EXECUTION)] == [
        "Bearer Atza|token-1",
        "Bearer Atza|token-2",
    ]


async def test_refused_twice_is_auth_error(fake_amc: FakeAmc) -> None:
    fake_amc.script("GET", EXECUTION, Reply(401, {"code": "401", "details": "Authentication failed"}))
    async with make_client(fake_amc) as client:
        with pytest.raises(AmcAuthError, match="Authentication failed"):
            await client.get_execution("e-1")
    assert len(fake_amc.calls("GET", EXECUTION)) == 2


async def test_retry_after_honoured(fake_amc: FakeAmc) -> None:
    sleeps: list[float] = []
    fake_amc.script(
        "GET", EXECUTION, Reply(429, {"code": "429"}, {"Retry-After": "2"}), Reply(body=execution_json())
    )
    async with make_client(fake_amc, sleeps) as client:
        await client.get_execution("e-1")
    assert sleeps == [2.0]


async def test_create_execution_not_retried_after_timeout(fake_amc: FakeAmc) -> None:
    fake_amc.script("POST", EXECUTIONS, Reply(body=execution_json(), delay=1.0))
    request = CreateExecutionRequest(workflow_id="wf", time_window_type="MOST_RECENT_DAY")
    async with make_client(fake_amc, timeout=0.2) as client:
        with pytest.raises(AmcTransportError, match="may have reached AMC"):
            await client.create_execution(request)
    assert len(fake_amc.calls("POST", EXECUTIONS)) == 1


async def test_get_retried_after_timeout(fake_amc: FakeAmc) -> None:
    sleeps: list[float] = []
    fake_amc.script(
        "GET",
        EXECUTION,
        Reply(body=execution_json(), delay=1.0),
        Reply(body=execution_json("e-1", "RUNNING")),
    )
    async with make_client(fake_amc, sleeps, timeout=0.2) as client:
        assert (await client.get_execution("e-1")).status == "RUNNING"
    assert len(fake_amc.calls("GET", EXECUTION)) == 2 and sleeps == [1.0]


async def test_refused_connection_is_retried_even_for_create(fake_amc: FakeAmc) -> None:
    sleeps: list[float] = []
    async with make_client(fake_amc, sleeps, host="http://127.0.0.1:9") as client:  # nothing listens on :9
        with pytest.raises(AmcTransportError, match="after 4 attempt"):
            await client.create_execution(CreateExecutionRequest(workflow_id="wf"))
    assert sleeps == [1.0, 2.0, 3.0], "never sent, so safe to repeat"


async def test_operations_cancel_upsert_pages_and_not_found(fake_amc: FakeAmc) -> None:
    workflows = f"/amc/reporting/{INSTANCE_ID}/workflows"
    fake_amc.script(
        "PUT", EXECUTION, Reply(body={}), Reply(400, {"code": "400", "details": "already SUCCEEDED"})
    )
    fake_amc.script(
        "GET", f"{workflows}/wf", Reply(400, {"code": "400", "details": "Workflow wf does not exist."})
    )
    fake_amc.script(
        "POST", workflows, Reply(body=b"{}", headers={"Content-Type": "application/octet-stream"})
    )
    fake_amc.script(
        "GET",
        EXECUTIONS,
        Reply(body={"executions": [execution_json("a")], "nextToken": "n1"}),
        Reply(body={"executions": [execution_json("b")]}),
    )
    async with make_client(fake_amc) as client:
        assert await client.cancel_execution("e-1") is True
        assert await client.cancel_execution("e-1") is False
        assert await client.upsert_workflow(Workflow(workflow_id="wf", sql_query="SELECT 1")) == "created"
        with pytest.raises(AmcNotFoundError):
            await client.get_workflow("wf")
        found = await client.list_executions(workflow_id="wf", page_size=1)
    assert [e.workflow_execution_id for e in found] == ["a", "b"]
    assert [c.query.get("nextToken") for c in fake_amc.calls("GET", EXECUTIONS)] == [None, "n1"]


async def test_iter_download_streams_and_expires(fake_amc: FakeAmc) -> None:
    payload = b"h1,h2\n" + b"1,2\n" * 50_000
    fake_amc.script("GET", "/downloads/part-0.csv", Reply(503), Reply(body=payload))
    fake_amc.script("GET", "/downloads/old.csv", Reply(403, "<Error><Code>AccessDenied</Code></Error>"))
    sleeps: list[float] = []
    async with make_client(fake_amc, sleeps) as client:
        chunks = [
            c
            async for c in client.iter_download(
                f"{fake_amc.url}/downloads/part-0.csv?X-Amz-Expires=600", chunk_size=4096
            )
        ]
        with pytest.raises(AmcDownloadExpiredError):
            _ = [c async for c in client.iter_download(f"{fake_amc.url}/downloads/old.csv")]
    assert b"".join(chunks) == payload and max(map(len, chunks)) <= 4096
    assert len(sleeps) == 1
    assert all("Authorization" not in c.headers for c in fake_amc.requests if c.path.startswith("/downloads"))


async def test_external_session_is_not_closed(fake_amc: FakeAmc) -> None:
    import aiohttp

    fake_amc.script("GET", "/amc/instances", Reply(body={"instances": [{"instanceId": "amc1"}]}))
    async with aiohttp.ClientSession() as session:
        async with AsyncAmcClient(fake_settings(fake_amc), session=session) as client:
            assert [i.instance_id for i in await client.list_instances()] == ["amc1"]
        assert not session.closed


async def test_a_token_echoed_in_a_403_body_is_redacted(fake_amc: FakeAmc) -> None:
    """AMC's 403 is ``{"code": "403", "details": ...}`` (amc-api.md §1.6); a gateway may echo the
    bearer token there. The triggerer's errors quote the body without it, as the worker's do."""
    echo = {"code": "403", "details": "Unauthorized request. Authorization: Bearer Atza|token-2"}
    fake_amc.script("GET", EXECUTION, Reply(status=403, body=echo))
    async with make_client(fake_amc) as client:
        with pytest.raises(AmcAuthError) as info:
            await client.get_execution("e-1")
    assert "token-2" not in str(info.value) and "token-2" not in str(info.value.details)
    assert "Unauthorized request." in str(info.value)
