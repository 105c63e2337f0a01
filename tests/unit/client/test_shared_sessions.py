"""Async clients in one event loop share one aiohttp session (bounded connections in the triggerer)."""

from __future__ import annotations

from airflow_provider_amc.client import AmcSettings, AsyncAmcClient

SETTINGS = AmcSettings(
    client_id="amzn1.application-oa2-client.x",
    client_secret="s",
    refresh_token="Atzr|r",
    advertiser_id="ENTITY1",
    marketplace_id="ATVPDKIKX0DER",
    host="http://127.0.0.1:9",
    token_url="http://127.0.0.1:9/auth/o2/token",
)


async def test_clients_in_one_loop_share_a_session_closed_by_the_last_one() -> None:
    first, second = AsyncAmcClient(SETTINGS), AsyncAmcClient(SETTINGS)
    session = first._http()
    assert second._http() is session
    assert session.connector is not None and session.connector.limit == 100
    await first.aclose()
    assert not session.closed  # the second client still uses it
    await second.aclose()
    assert session.closed
    third = AsyncAmcClient(SETTINGS)
    assert third._http() is not session  # a fresh one after the last release
    await third.aclose()


async def test_a_session_passed_in_is_never_closed_by_the_client() -> None:
    import aiohttp

    async with aiohttp.ClientSession() as own:
        client = AsyncAmcClient(SETTINGS, session=own)
        assert client._http() is own
        await client.aclose()
        assert not own.closed
