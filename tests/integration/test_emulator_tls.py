"""The emulator over HTTPS (``--tls`` / ``EmulatorServer(tls=True)``) with its generated CA.

The whole flow - create, status, download URLs, download - runs through the hook as a user
configures it (the ``amc`` connection with the ``verify`` extra set to the emulator's CA file),
once on the worker path (requests) and once on the triggerer path (aiohttp).
"""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests
from emulator_cli import emulator_cli

from airflow_provider_amc.client import CreateExecutionRequest
from airflow_provider_amc.emulator import defaults as d
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook

pytestmark = pytest.mark.integration

REQUEST = CreateExecutionRequest(
    workflow_id=d.DEMO_WORKFLOW_ID,
    time_window_type="EXPLICIT",
    time_window_start="2026-01-01T00:00:00",
    time_window_end="2026-01-02T00:00:00",
    parameter_values={d.DEMO_PARAMETER_NAME: 1},
)


@pytest.fixture
def https_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[EmulatorServer]:
    """An emulator of its own serving HTTPS, and the default ``amc`` connection pointing at it."""
    # A machine-wide bundle (REQUESTS_CA_BUNDLE, SSL_CERT_FILE...) stays set, as on most hosts: the
    # connection's verify extra must win over it on both paths.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())
    with EmulatorServer(tls=True) as server:
        server.admin.script(d.DEMO_WORKFLOW_ID, rows=300, parts=2)
        monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(server.connection()))
        yield server


def expected_bytes(server: EmulatorServer, execution_id: str) -> int:
    return int(server.admin.result_summary(d.DEFAULT_INSTANCE_ID, execution_id)["bytes"])


def test_server_issues_https_urls_signed_by_its_ca(https_server: EmulatorServer) -> None:
    assert https_server.url.startswith("https://127.0.0.1:")
    assert https_server.ca_file is not None
    assert https_server.connection()["extra"]["verify"] == https_server.ca_file
    instances = AmcHook().list_instances()
    assert {urlsplit(i.api_endpoint or "").scheme for i in instances} == {"https"}
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{https_server.url}/emulator/health", timeout=10)  # the system CAs do not know it
    # (that the hook refuses it without verify on both paths: test_proxy_tls, same CA generator)
    context = ssl.create_default_context(cafile=https_server.ca_file)
    assert context.cert_store_stats()["x509_ca"] == 1


def test_whole_flow_over_https_through_the_hook_sync(https_server: EmulatorServer) -> None:
    hook = AmcHook()
    execution_id = hook.create_execution(REQUEST).workflow_execution_id
    assert hook.get_execution(execution_id).status == "PENDING"
    https_server.admin.advance(60)
    assert hook.get_execution(execution_id).status == "SUCCEEDED"
    urls = hook.get_download_urls(execution_id)
    assert len(urls.download_urls) == 2
    assert all(url.startswith(https_server.url + "/downloads/") for url in urls.download_urls)
    size = sum(len(chunk) for url in urls.download_urls for chunk in hook.iter_download(url))
    assert size == expected_bytes(https_server, execution_id)


def test_whole_flow_over_https_through_the_hook_async(https_server: EmulatorServer) -> None:
    async def flow() -> tuple[str, int]:
        async with await AmcHook().get_async_client() as client:
            execution_id = (await client.create_execution(REQUEST)).workflow_execution_id
            assert (await client.get_execution(execution_id)).status == "PENDING"
            await asyncio.to_thread(https_server.admin.advance, 60)
            assert (await AmcHook().aget_execution(execution_id)).status == "SUCCEEDED"
            urls = await client.get_download_urls(execution_id)
            assert all(url.startswith("https://") for url in urls.download_urls)
            size = 0
            for url in urls.download_urls:
                async for chunk in client.iter_download(url):
                    size += len(chunk)
            return execution_id, size

    execution_id, size = asyncio.run(flow())
    assert size == expected_bytes(https_server, execution_id)


def test_cli_tls_prints_the_ca_file_and_serves_https() -> None:
    with emulator_cli("--tls") as cli:
        assert cli.url.startswith("https://127.0.0.1:")
        assert cli.ca_file is not None and cli.lines[0] == f"AMC emulator CA certificate: {cli.ca_file}"
        token = cli.token()  # verified against the printed CA file
        instances = requests.get(
            f"{cli.url}/amc/instances", headers=cli.headers(token), timeout=10, verify=cli.ca_file
        )
        assert instances.status_code == 200
        assert {i["apiEndpoint"] for i in instances.json()["instances"]} == {cli.url}
