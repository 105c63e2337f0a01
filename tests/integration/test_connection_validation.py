"""An ``amc`` connection is checked before any HTTP call, and ``test_connection()`` says what is wrong.

Users put values where they seem natural (``extra.host``); a silently ignored key sends every
call to the production host. Each case sets the connection as users do (``AIRFLOW_CONN_*`` JSON).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from airflow_provider_amc.client import AmcConfigError
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.auth import Credentials
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import KNOWN_EXTRA_FIELDS, AmcHook
from airflow_provider_amc.triggers.amc import AmcExecutionTrigger


def _connect(monkeypatch: pytest.MonkeyPatch, url: str, drop: tuple[str, ...] = (), **extra: Any) -> None:
    conn = defaults.airflow_connection(url)
    conn["extra"].update(extra)
    for key in drop:
        conn["extra"].pop(key)
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))


@pytest.mark.parametrize(
    ("key", "where"),
    [
        ("host", "Host field"),
        ("port", "Host field"),
        ("schema", "scheme of the connection's Host field"),
        ("client_secret", "Password field"),
    ],
)
def test_extra_keys_that_belong_elsewhere_are_refused(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, key: str, where: str
) -> None:
    _connect(monkeypatch, emulator.url, **{key: "http://127.0.0.1:8765"})
    emulator.admin.clear_requests()
    with pytest.raises(AmcConfigError) as caught:
        AmcHook().list_instances()
    message = str(caught.value)
    assert f"unknown extra field(s) '{key}' (belongs in" in message
    assert where in message
    assert "known extra fields are " + ", ".join(KNOWN_EXTRA_FIELDS) in message
    assert emulator.admin.requests() == []


def test_unknown_extra_key_is_named_with_the_known_fields(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url, verify_ssl=False, instance="amcx")
    ok, message = AmcHook().test_connection()
    assert not ok
    assert "unknown extra field(s) 'instance', 'verify_ssl';" in message
    assert "instance_id" in message and "verify" in message  # the known fields, for the fix


def test_prefixed_known_extras_are_accepted(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = defaults.airflow_connection(emulator.url)
    conn["extra"] = {f"extra__amc__{key}": value for key, value in conn["extra"].items()}
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))
    assert AmcHook().test_connection()[0]


def test_missing_extra_is_said_once(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> None:
    _connect(monkeypatch, emulator.url, drop=("refresh_token",))
    with pytest.raises(AmcConfigError) as caught:
        AmcHook().settings  # noqa: B018
    message = str(caught.value)
    assert message == "amc connection 'amc_default' is not usable: refresh_token: Field required"


def test_trigger_reports_a_bad_connection_once(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url, host="http://127.0.0.1:1")

    async def first_event() -> dict[str, Any]:
        async for event in AmcExecutionTrigger(execution_id="e-1").run():
            return event.payload
        raise AssertionError("no event")

    payload = asyncio.run(first_event())
    assert payload["status"] == "error"
    assert payload["message"].count("unknown extra field(s) 'host'") == 1
    assert payload["message"].count("AmcConfigError") == 1


def test_test_connection_fails_when_no_instance_is_visible(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url, advertiser_id="ENTITYNOTMINE")
    ok, message = AmcHook().test_connection()
    assert not ok
    assert "no AMC instance is visible for advertiser_id 'ENTITYNOTMINE'" in message


def test_test_connection_fails_when_the_default_instance_is_not_visible(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url, instance_id="amcnotthere")
    ok, message = AmcHook().test_connection()
    assert not ok
    assert "default instance_id 'amcnotthere' is not visible" in message
    assert defaults.DEFAULT_INSTANCE_ID in message  # what the user can choose instead


def test_test_connection_succeeds_and_names_the_instances(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _connect(monkeypatch, emulator.url)
    ok, message = AmcHook().test_connection()
    assert ok, message
    assert defaults.DEFAULT_INSTANCE_ID in message


@pytest.mark.parametrize(
    ("field", "wrong", "says"),
    [
        (
            "password",
            "amzn1.oa2-cs.v1.wrong/+=%:|secret",
            "invalid_client): check client_id and client_secret",
        ),
        ("refresh_token", "Atzr|IwEB-wrong/+=%:|refresh", "invalid_grant): check refresh_token"),
    ],
)
def test_test_connection_with_a_wrong_credential_names_it_without_quoting_it(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch, field: str, wrong: str, says: str
) -> None:
    conn = defaults.airflow_connection(emulator.url)
    if field == "password":
        conn["password"] = wrong
    else:
        conn["extra"]["refresh_token"] = wrong
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))
    ok, message = AmcHook().test_connection()
    assert not ok
    assert message.startswith("AmcAuthError: Login with Amazon refused the token request"), message
    assert says in message
    assert wrong not in message and quote(wrong, safe="") not in message
    assert emulator.admin.count("GET", r"^/amc/instances$") == 0


def test_test_connection_with_a_uri_and_url_encoded_secrets(
    emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URI form, with a client secret and a refresh token holding ``/ + = % : | @``."""
    secret, refresh = "amzn1.oa2-cs.v1.a/b+c=d%e:f|g@h", "Atzr|IwEBI+/=x%y:z|w"
    monkeypatch.setattr(
        emulator.state.tokens, "credentials", Credentials(client_secret=secret, refresh_token=refresh)
    )
    query = urlencode(
        {
            "refresh_token": refresh + "\n",  # pasted with its line break
            "advertiser_id": defaults.DEFAULT_ADVERTISER_ID,
            "marketplace_id": defaults.DEFAULT_MARKETPLACE_ID,
            "token_url": f"{emulator.url}/auth/o2/token",
        }
    )
    host = quote(emulator.url, safe="")
    uri = f"amc://{quote(defaults.DEFAULT_CLIENT_ID, safe='')}:{quote(secret, safe='')}@{host}/?{query}"
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", uri)
    ok, message = AmcHook().test_connection()
    assert ok, message
    assert defaults.DEFAULT_INSTANCE_ID in message
