"""Fixtures for the client unit tests: a fresh token cache, settings, a loopback fake AMC."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from amc_client_fakes import FakeAmc, make_settings

from airflow_provider_amc.client import TOKEN_CACHE, AmcSettings


@pytest.fixture(autouse=True)
def _fresh_token_cache() -> Iterator[None]:
    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture
def settings() -> AmcSettings:
    return make_settings()


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
