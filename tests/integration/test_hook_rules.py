"""Rules of the hook that one-line mutations used to slip past (issue 14, item 7 a and d)."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote, quote_plus
from zoneinfo import ZoneInfo

import pytest

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook, amc_time


def _unique_secrets(monkeypatch: pytest.MonkeyPatch, url: str = "http://127.0.0.1:9") -> tuple[str, str, str]:
    """A connection with secrets no other test registered (the masker is process-wide)."""
    refresh = f"Atzr|IwEB{uuid.uuid4().hex}+/={uuid.uuid4().hex}"
    client_secret = f"amzn1.oa2-cs.v1.{uuid.uuid4().hex}"
    proxy_password = f"p@ss|{uuid.uuid4().hex}"
    conn = defaults.airflow_connection(url)
    conn["password"] = client_secret
    conn["extra"]["refresh_token"] = refresh
    conn["extra"]["proxies"] = {"https": f"http://user:{quote(proxy_password, safe='')}@127.0.0.1:3128"}
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))
    return refresh, client_secret, proxy_password


def _assert_masked(*secrets: str) -> None:
    from airflow.sdk.log import redact

    for secret in secrets:
        for form in (secret, quote(secret, safe=""), quote_plus(secret)):
            text = f"refresh_token={form}&grant_type=refresh_token"
            assert form not in str(redact(text)), (
                f"not masked: the {'raw' if form == secret else 'URL-encoded'} form"
            )


def test_worker_hook_registers_secrets_and_their_url_encoded_forms(monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = _unique_secrets(monkeypatch)
    AmcHook().settings  # noqa: B018 - the worker side reads the connection here
    _assert_masked(*secrets)


def test_triggerer_hook_registers_secrets_and_their_url_encoded_forms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secrets = _unique_secrets(monkeypatch)
    asyncio.run(AmcHook().aget_settings())
    _assert_masked(*secrets)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2026, 3, 1, 12, tzinfo=ZoneInfo("Europe/Berlin")), "2026-03-01T11:00:00"),
        (datetime(2026, 7, 1, 0, 30, tzinfo=ZoneInfo("America/New_York")), "2026-07-01T04:30:00"),
        (datetime(2026, 3, 1, 12, tzinfo=timezone(timedelta(hours=-3))), "2026-03-01T15:00:00"),
        (datetime(2026, 3, 1, 12, tzinfo=UTC), "2026-03-01T12:00:00"),
        (datetime(2026, 3, 1, 12), "2026-03-01T12:00:00"),
        ("2026-03-01T12:00:00", "2026-03-01T12:00:00"),
    ],
)
def test_amc_time_converts_aware_datetimes_to_utc(value: datetime | str, expected: str) -> None:
    assert amc_time(value) == expected


def test_find_executions_sends_utc(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(defaults.airflow_connection(emulator.url)))
    emulator.admin.clear_requests()
    berlin = ZoneInfo("Europe/Berlin")
    AmcHook().find_executions(
        created_after=datetime(2026, 3, 1, 12, tzinfo=berlin),
        created_before=datetime(2026, 3, 2, tzinfo=berlin),
    )
    (entry,) = [e for e in emulator.admin.requests() if e["path"].endswith("/workflowExecutions")]
    assert entry["query"]["minCreationTime"] == "2026-03-01T11:00:00"
    assert entry["query"]["maxCreationTime"] == "2026-03-01T23:00:00"
