"""Proxies and TLS are the same on the worker (requests) and in the triggerer (aiohttp).

Real sockets: a forward proxy that records every request it relays, and a TLS front with a
certificate signed by a CA generated here, in front of the emulator. Every case goes through
the hook as users configure it (connection extras, environment variables).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from airflow_provider_amc.client import (
    AmcConfigError,
    AmcTransportError,
    CreateExecutionRequest,
    Workflow,
)
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook
from netkit import ForwardProxy, TlsFront, make_private_ca

PROXY_ENV = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")
CERT_REFUSED = "CERTIFICATE_VERIFY_FAILED|certificate verify failed"
WORKFLOW = Workflow(workflow_id="proxy_tls_probe", sql_query="SELECT campaign FROM dsp_impressions")


@pytest.fixture(autouse=True)
def _clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own proxy variables must not decide these tests (environment, not provider state)."""
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with ForwardProxy() as server:
        yield server


@pytest.fixture(scope="module")
def private_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return make_private_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def https_emulator(emulator: EmulatorServer, private_ca: tuple[Path, Path, Path]) -> Iterator[TlsFront]:
    _, cert, key = private_ca
    parts = urlsplit(emulator.url)
    with TlsFront((parts.hostname or "127.0.0.1", parts.port or 80), cert, key) as front:
        yield front


@pytest.fixture(autouse=True)
def _emulator_credentials(emulator: EmulatorServer) -> Iterator[None]:
    """Each case rotates the emulator's refresh token (``_rotate``): new credentials have no cached
    access token, so each side fetches its own through the path under test (no cache is reset)."""
    original = emulator.state.tokens.credentials
    yield
    emulator.state.tokens.credentials = original


_CURRENT: dict[str, Any] = {}


def _connect(monkeypatch: pytest.MonkeyPatch, url: str, **extra: Any) -> None:
    conn = defaults.airflow_connection(url)
    conn["extra"].update(extra)
    _CURRENT.update(monkeypatch=monkeypatch, conn=conn)
    _rotate()


def _rotate() -> None:
    """A new refresh token, known to the emulator and set in the connection (a rotated secret)."""
    from airflow_provider_amc.emulator.auth import Credentials

    refresh = f"Atzr|proxy-tls-{uuid.uuid4().hex}"
    for server in _SERVERS:
        server.state.tokens.credentials = Credentials(refresh_token=refresh)
    conn = _CURRENT["conn"]
    conn["extra"]["refresh_token"] = refresh
    _CURRENT["monkeypatch"].setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))


_SERVERS: list[EmulatorServer] = []


@pytest.fixture(autouse=True)
def _the_emulator(emulator: EmulatorServer) -> Iterator[None]:
    _SERVERS[:] = [emulator]
    yield
    _SERVERS.clear()


def _worker_then_triggerer() -> str:
    """Worker side: token, upsert, create (requests). Triggerer side: a new hook polls (aiohttp)."""
    hook = AmcHook()
    hook.upsert_workflow(WORKFLOW)
    request = CreateExecutionRequest(
        workflow_id=WORKFLOW.workflow_id,
        time_window_type="EXPLICIT",
        time_window_start="2026-01-01T00:00:00",
        time_window_end="2026-01-02T00:00:00",
    )
    execution_id = hook.create_execution(request).workflow_execution_id
    _rotate()  # the triggerer is another process: it fetches its own token

    async def poll() -> str:
        return (await AmcHook().aget_execution(execution_id)).workflow_execution_id

    assert asyncio.run(poll()) == execution_id
    return execution_id


def _relayed(proxy: ForwardProxy, execution_id: str) -> tuple[list[str], list[str]]:
    """(token requests, execution reads) the proxy relayed."""
    tokens = [line for line in proxy.seen if "/auth/o2/token" in line]
    polls = [line for line in proxy.seen if line.startswith("GET ") and line.endswith(execution_id)]
    return tokens, polls


def test_proxies_extra_is_used_by_worker_and_triggerer(
    emulator: EmulatorServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url, proxies={"http": proxy.url, "https": proxy.url})
    execution_id = _worker_then_triggerer()
    tokens, polls = _relayed(proxy, execution_id)
    assert len(tokens) == 2, proxy.seen  # one per side
    assert len(polls) == 1, proxy.seen  # the triggerer's poll went through the proxy too
    assert any(line.startswith("POST ") and line.endswith("/workflowExecutions") for line in proxy.seen)


def test_environment_proxy_is_honoured_by_both_paths(
    emulator: EmulatorServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url)
    with monkeypatch.context() as env:  # only while the hook runs (the emulator's admin client reads it too)
        env.setenv("HTTP_PROXY", proxy.url)
        execution_id = _worker_then_triggerer()
    tokens, polls = _relayed(proxy, execution_id)
    assert (len(tokens), len(polls)) == (2, 1), proxy.seen


@pytest.mark.parametrize("how", ["no_proxy", "trust_env_false"])
def test_environment_proxy_is_skipped_alike(
    how: str, emulator: EmulatorServer, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url, **({"trust_env": False} if how == "trust_env_false" else {}))
    with monkeypatch.context() as env:
        env.setenv("HTTP_PROXY", proxy.url)
        if how == "no_proxy":
            env.setenv("NO_PROXY", "127.0.0.1")
        _worker_then_triggerer()
    assert proxy.seen == []


def test_private_ca_bundle_verifies_both_paths(
    https_emulator: TlsFront, private_ca: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, _, _ = private_ca
    _connect(monkeypatch, https_emulator.url, verify=str(ca))
    _worker_then_triggerer()
    assert https_emulator.handshake_errors == []


def test_private_ca_from_environment_with_trust_env(
    https_emulator: TlsFront, private_ca: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, _, _ = private_ca
    _connect(monkeypatch, https_emulator.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    _worker_then_triggerer()


def test_unknown_ca_is_refused_by_both_paths(
    https_emulator: TlsFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, https_emulator.url, max_attempts=1)
    with pytest.raises(AmcTransportError, match=CERT_REFUSED):
        AmcHook().get_access_token()

    async def token() -> None:
        async with await AmcHook().get_async_client() as client:
            await client.get_access_token()

    with pytest.raises(AmcTransportError, match=CERT_REFUSED):
        asyncio.run(token())


def test_verify_false_turns_verification_off_on_both_paths(
    https_emulator: TlsFront, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, https_emulator.url, verify="false")
    with pytest.warns(Warning):  # urllib3 warns about the unverified request, as it should
        _worker_then_triggerer()


def test_https_through_proxy_tunnels_on_both_paths(
    https_emulator: TlsFront,
    private_ca: tuple[Path, Path, Path],
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca, _, _ = private_ca
    _connect(monkeypatch, https_emulator.url, verify=str(ca), proxies={"https": proxy.url})
    _worker_then_triggerer()
    target = f"CONNECT 127.0.0.1:{https_emulator.port}"
    assert proxy.seen.count(target) >= 2, proxy.seen  # at least one tunnel per side
    assert set(proxy.seen) == {target}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"verify": "/nonexistent/ca.pem"},
            r"verify: must be true or false .* existing CA bundle .*, got '/nonexistent/ca.pem'",
        ),
        ({"verify": 3}, r"verify: must be true or false .*, got 3$"),
        ({"proxies": {"https": "socks5://127.0.0.1:1080"}}, "SOCKS proxies are not supported"),
        ({"proxies": "http://proxy:3128"}, "proxies must be a mapping"),
    ],
)
def test_bad_tls_and_proxy_extras_are_refused_before_any_call(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any], message: str
) -> None:
    _connect(monkeypatch, emulator.url, **extra)
    emulator.admin.clear_requests()
    with pytest.raises(AmcConfigError, match=message):
        AmcHook().settings  # noqa: B018
    assert emulator.admin.requests() == []
