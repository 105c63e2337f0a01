"""``AmcHook.test_connection()`` (the UI's Test button) checks the credentials as they are now: it
asks Login with Amazon for a token itself instead of reusing one the process cached earlier."""

from __future__ import annotations

from airflow_env import amc_connection_env, apply_airflow_test_env

apply_airflow_test_env()

import pytest  # noqa: E402
import requests_mock as rm  # noqa: E402

from airflow_provider_amc.hooks.amc import AmcHook  # noqa: E402

API = "https://amc.test-connection.test"
TOKEN_URL = f"{API}/auth/o2/token"
INSTANCES = {"instances": [{"instanceId": "amcconntest01"}]}


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, requests_mock: rm.Mocker) -> rm.Mocker:
    for name, value in amc_connection_env(API, instance_id=None).items():
        monkeypatch.setenv(name, value)
    requests_mock.get(f"{API}/amc/instances", json=INSTANCES)
    return requests_mock


def test_a_refresh_token_revoked_after_a_token_was_cached_fails_the_test(api: rm.Mocker) -> None:
    api.post(TOKEN_URL, json={"access_token": "Atza|cached", "expires_in": 3600})
    AmcHook().get_access_token()  # a task earlier in this process cached a token
    api.post(TOKEN_URL, status_code=400, json={"error": "invalid_grant"})  # then the grant was revoked
    ok, message = AmcHook().test_connection()
    assert not ok
    assert "invalid_grant): check refresh_token" in message


def test_each_test_asks_for_a_token(api: rm.Mocker) -> None:
    api.post(TOKEN_URL, json={"access_token": "Atza|fresh", "expires_in": 3600})
    assert AmcHook().test_connection()[0]
    assert AmcHook().test_connection()[0]
    tokens = [call for call in api.request_history if call.url == TOKEN_URL]
    assert len(tokens) == 2
    instance_calls = [call for call in api.request_history if call.path == "/amc/instances"]
    assert [call.headers["Authorization"] for call in instance_calls] == ["Bearer Atza|fresh"] * 2
