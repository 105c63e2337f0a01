"""Fixtures for the client unit tests: a fresh token cache, settings, a loopback fake AMC."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from amc_client_fakes import REFRESH_TOKEN, FakeAmc, make_settings

from airflow_provider_amc.client import AmcSettings


@pytest.fixture
def settings() -> AmcSettings:
    """Credentials of this test only: the process-wide token cache is keyed by them, so no token
    is shared with another test (nothing is reset between tests)."""
    return make_settings(refresh_token=f"{REFRESH_TOKEN}-{uuid.uuid4().hex}")


@pytest.fixture
async def fake_amc() -> AsyncIterator[FakeAmc]:
    fake = FakeAmc()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    fake.url = str(server.make_url("")).rstrip("/")
    try:
        yield fake
    finally:
        await server.close()
