"""Every HTTP attempt has a total deadline (``timeout``), not only a per-read one.

A server that sends one byte every 1.5 s never trips a 2 s read timeout; the sync client (requests)
used to wait for hours. Both clients must give up within the documented bound:
``timeout`` per attempt (plus scheduling slack), ``timeout`` per download chunk.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from reliability_registry import record

from airflow_provider_amc.client import AmcClient, AmcSettings, AmcTransportError, AsyncAmcClient, TokenCache
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from netkit import SlowServer, silent, trickle

TIMEOUT = 2.0
BOUND = TIMEOUT + 1.5  # the documented per-attempt bound plus slack for a loaded 2-core machine


@pytest.fixture(params=["trickle_body", "trickle_head", "silent"])
def slow(request: pytest.FixtureRequest) -> Iterator[SlowServer]:
    behave = {
        "trickle_body": trickle(1.5),
        "trickle_head": trickle(1.5, head=True),
        "silent": silent(),
    }[request.param]
    with SlowServer(behave) as server:
        yield server


def _settings(api: str, token_url: str) -> AmcSettings:
    return AmcSettings(
        client_id=defaults.DEFAULT_CLIENT_ID,
        client_secret=defaults.DEFAULT_CLIENT_SECRET,
        refresh_token=defaults.DEFAULT_REFRESH_TOKEN,
        advertiser_id=defaults.DEFAULT_ADVERTISER_ID,
        marketplace_id=defaults.DEFAULT_MARKETPLACE_ID,
        instance_id=defaults.DEFAULT_INSTANCE_ID,
        host=api,
        token_url=token_url,
        timeout=TIMEOUT,
        max_attempts=1,
    )


def _ends_in_time(call: Callable[[], Any]) -> str:
    started = time.monotonic()
    with pytest.raises(AmcTransportError) as caught:
        call()
    elapsed = time.monotonic() - started
    assert elapsed < BOUND, f"took {elapsed:.1f} s (bound {BOUND} s)"
    record("calls_bounded")
    return str(caught.value)


CALLS: dict[str, Callable[[Any], Any]] = {
    "status": lambda c: c.get_execution("e-1"),
    "downloadUrls": lambda c: c.get_download_urls("e-1"),
    "create": lambda c: c.cancel_execution("e-1"),  # a write; create itself is covered below
}


@pytest.mark.parametrize("name", sorted(CALLS))
def test_sync_api_calls_end_within_the_deadline(
    name: str, slow: SlowServer, emulator: EmulatorServer
) -> None:
    with AmcClient(_settings(slow.url, f"{emulator.url}/auth/o2/token"), token_cache=TokenCache()) as client:
        message = _ends_in_time(lambda: CALLS[name](client))
    assert "total deadline of 2 s" in message or "Read timed out" in message, message


def test_sync_token_and_create_end_within_the_deadline(slow: SlowServer) -> None:
    from airflow_provider_amc.client import CreateExecutionRequest

    with AmcClient(_settings(slow.url, f"{slow.url}/auth/o2/token"), token_cache=TokenCache()) as client:
        _ends_in_time(client.get_access_token)
    request = CreateExecutionRequest(workflow_id="w")
    with AmcClient(_settings(slow.url, f"{slow.url}/auth/o2/token"), token_cache=TokenCache()) as client:
        client._token_cache._store(client._token_key, "a-token", 3600)  # skip LwA: the create is under test
        _ends_in_time(lambda: client.create_execution(request))


def test_async_calls_end_within_the_deadline(slow: SlowServer, emulator: EmulatorServer) -> None:
    async def poll() -> None:
        async with AsyncAmcClient(
            _settings(slow.url, f"{emulator.url}/auth/o2/token"), token_cache=TokenCache()
        ) as client:
            await client.get_execution("e-1")

    _ends_in_time(lambda: asyncio.run(poll()))


def _streaming_body(sock: Any) -> None:
    """Headers at once, then one body byte every 1.5 s (a stalled download)."""
    sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(80):
        try:
            sock.sendall(b"x")
        except OSError:
            return
        time.sleep(1.5)


def test_download_chunk_stall_ends_on_both_paths() -> None:
    with SlowServer(_streaming_body) as server:
        url = f"{server.url}/result.csv?X-Amz-Signature=abc"
        settings = _settings(server.url, f"{server.url}/auth/o2/token")
        with AmcClient(settings, token_cache=TokenCache()) as client:
            message = _ends_in_time(lambda: list(client.iter_download(url, chunk_size=4096)))
        assert "less than 4096 bytes arrived within 2 s" in message

        async def read() -> None:
            async with AsyncAmcClient(settings, token_cache=TokenCache()) as client:
                async for _ in client.iter_download(url, chunk_size=4096):
                    pass

        message = _ends_in_time(lambda: asyncio.run(read()))
        assert "less than 4096 bytes arrived within 2 s" in message
