"""Secret hygiene by construction: succeeding and failing flows at DEBUG on the root logger, with
hostile token endpoints (echoing the request, an HTML page, a truncated 200, a 500), and every place
a secret could end up is searched for each secret, its URL-encoded forms and each 16-character
piece of it: log lines, process output, exception texts, XComs, trigger events, task-state-store
values and Postgres rows. Searched raw, before any masker (the masker is the second line).

Secrets: the client secret, the refresh token, every access token the emulator issued, and the
query string (signature) of every pre-signed download URL.
"""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

import pytest
from reliability_helpers import (
    create_operator,
    fast_trigger,
    finish_executions,
    first_event,
    pg_rows,
    sensor,
    temp_table,
)
from reliability_registry import record

from airflow_env import FakeTaskInstance, InMemoryTaskStateStore, task_context
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.auth import Credentials
from airflow_provider_amc.emulator.testing import EmulatorServer
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.transfers.amc_to_postgres import AmcToPostgresOperator
from netkit import ScriptedServer, http_answer

PG_CONN = "amc_reliability_pg"
PIECE = 16


class Places:
    """Every text a secret must not reach, by name; ``search`` looks for every form of every secret."""

    def __init__(self) -> None:
        self.texts: list[tuple[str, str]] = []

    def add(self, where: str, value: Any) -> None:
        text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
        self.texts.append((where, text))

    def add_exception(self, where: str, exc: BaseException) -> None:
        self.add(f"{where}: exception text", str(exc))
        self.add(f"{where}: exception repr", repr(exc))
        self.add(f"{where}: traceback", "".join(traceback.format_exception(exc)))
        self.add(f"{where}: exception attributes", repr(vars(exc)))

    def add_task(self, where: str, ti: FakeTaskInstance, store: InMemoryTaskStateStore) -> None:
        for key, value in ti.pushed:
            self.add(f"{where}: XCom {key}", value)
        for key, value in store.values.items():
            self.add(f"{where}: task-state-store {key}", value)

    def search(self, secrets: dict[str, str]) -> list[tuple[str, str, str]]:
        forms = {name: secret_forms(secret) for name, secret in secrets.items()}
        return [
            (name, form, where)
            for where, text in self.texts
            for name, variants in forms.items()
            for form in variants
            if form in text
        ]


def secret_forms(secret: str) -> set[str]:
    """The secret, its URL-encoded forms and every 16-character piece of it."""
    pieces = {secret[i : i + PIECE] for i in range(max(len(secret) - PIECE + 1, 1))}
    return {secret, quote(secret, safe=""), quote_plus(secret), *pieces}


class LogCapture(logging.Handler):
    """Every record of every logger at DEBUG, formatted with its traceback, unmasked."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[LogCapture]:
    root = logging.getLogger()
    handler, level = LogCapture(), root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


@pytest.fixture
def secrets(amc_env: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Fresh credentials with characters that URL-encoding changes, known to the emulator."""
    values = {
        "client secret": f"cs|{uuid.uuid4().hex}+/={uuid.uuid4().hex[:12]}",
        "refresh token": f"Atzr|IwEB{uuid.uuid4().hex}|{uuid.uuid4().hex}+/=",
    }
    tokens = amc_env.state.tokens
    original = tokens.credentials
    tokens.credentials = Credentials(
        client_secret=values["client secret"], refresh_token=values["refresh token"]
    )
    _point(monkeypatch, amc_env.url, values)
    try:
        yield values
    finally:
        tokens.credentials = original


def _point(
    monkeypatch: pytest.MonkeyPatch, api: str, values: dict[str, str], token_url: str | None = None
) -> None:
    conn = defaults.airflow_connection(api)
    conn["password"] = values["client secret"]
    conn["extra"]["refresh_token"] = values["refresh token"]
    conn["extra"].update(backoff_base=0.01, backoff_max=0.05, timeout=5)
    if token_url:
        conn["extra"]["token_url"] = token_url
    monkeypatch.setenv("AIRFLOW_CONN_AMC_DEFAULT", json.dumps(conn))


# ---- hostile token endpoints ---------------------------------------------------------------------
def _echoing(head: bytes, body: bytes) -> bytes:
    form = body.decode()
    echoed = {"error": "invalid_grant", "error_description": f"bad grant in {form}", "request": form}
    return http_answer(400, json.dumps({**echoed, **dict(parse_qsl(form))}).encode())


def _html(head: bytes, body: bytes) -> bytes:
    page = f"<html><body><h1>400 Bad Request</h1><pre>{body.decode()}</pre></body></html>"
    return http_answer(400, page.encode(), "text/html")


def _truncated_200(head: bytes, body: bytes) -> bytes:
    full = json.dumps({"access_token": "Atza|" + uuid.uuid4().hex * 4, "echo": body.decode()}).encode()
    return http_answer(200, full[: len(full) - 7])


def _server_error(head: bytes, body: bytes) -> bytes:
    return http_answer(500, b"Internal error while processing " + body, "text/plain")


def _secret_as_key(head: bytes, body: bytes) -> bytes:
    return http_answer(200, json.dumps(dict.fromkeys(parse_qsl(body.decode())[1], 1)).encode())


HOSTILE = {
    "echoing 400": _echoing,
    "HTML 400": _html,
    "truncated 200": _truncated_200,
    "500 echoing": _server_error,
    "secret as a key": _secret_as_key,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_no_secret_anywhere_with_a_hostile_token_endpoint(
    name: str,
    amc_env: EmulatorServer,
    secrets: dict[str, str],
    debug_logs: LogCapture,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    places = Places()
    with ScriptedServer(HOSTILE[name]) as lwa, temp_table() as table:
        _point(monkeypatch, amc_env.url, secrets, token_url=f"{lwa.url}/auth/o2/token")

        ok, message = AmcHook().test_connection()
        assert not ok
        places.add("test_connection message", message)

        store, ti = InMemoryTaskStateStore(), FakeTaskInstance()
        with pytest.raises(Exception) as caught:
            create_operator(PG_CONN, table).execute(task_context(ti, task_state_store=store))
        places.add_exception("create operator", caught.value)
        places.add_task("create operator", ti, store)

        event = first_event(fast_trigger("00000000-0000-4000-8000-000000000001", max_consecutive_errors=2))
        assert event["status"] == "error", event
        places.add("trigger event", event)
        for row in pg_rows(table) if _exists(table) else []:
            places.add("Postgres row", row)
        assert lwa.requests, "the hostile endpoint was never asked: nothing was tested"
        assert any(quote(secrets["refresh token"], safe="") in body.decode() for _, body in lwa.requests)

    _finish(places, debug_logs, capfd, secrets, amc_env)
    record("hostile_answers")


def test_no_secret_anywhere_in_a_succeeding_flow(
    amc_env: EmulatorServer,
    secrets: dict[str, str],
    debug_logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    places = Places()
    with temp_table() as records_table, temp_table() as results_table:
        store, ti = InMemoryTaskStateStore(), FakeTaskInstance()
        execution_id = create_operator(PG_CONN, records_table).execute(
            task_context(ti, task_state_store=store)
        )
        places.add_task("create operator", ti, store)
        finish_executions(amc_env)
        event = first_event(fast_trigger(execution_id))
        assert event["status"] == "success", event
        places.add("trigger event", event)
        ti = FakeTaskInstance()
        sensor(execution_id, PG_CONN, records_table).execute_complete(task_context(ti), event)
        places.add_task("sensor", ti, InMemoryTaskStateStore())
        load = AmcToPostgresOperator(
            task_id="load",
            execution_id=execution_id,
            table=results_table,
            postgres_conn_id=PG_CONN,
            executions_table=records_table,
        )
        ti = FakeTaskInstance()
        places.add("load result", load.execute(task_context(ti)))
        places.add_task("load", ti, InMemoryTaskStateStore())
        for table in (records_table, results_table):
            rows = pg_rows(table)
            assert rows, f"nothing loaded into {table}: nothing to search"
            for row in rows:
                places.add(f"Postgres row of {table}", row)
        urls = AmcHook().get_download_urls(execution_id).download_urls
    signatures = {f"download URL query {n}": urlsplit(url).query for n, url in enumerate(urls)}
    assert all(signatures.values()), "the emulator's download URLs carry no query: nothing to search"
    assert not [line for line in debug_logs.lines if any(q in line for q in signatures.values())]
    _finish(places, debug_logs, capfd, {**secrets, **signatures}, amc_env)
    record("tasks_survived")


def _exists(table: str) -> bool:
    import psycopg

    from airflow_env import PG_TEST_DSN

    with psycopg.connect(PG_TEST_DSN, autocommit=True) as conn:
        return bool(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0])  # type: ignore[index]


def _finish(
    places: Places,
    logs: LogCapture,
    capfd: pytest.CaptureFixture[str],
    secrets: dict[str, str],
    emulator: EmulatorServer,
) -> None:
    """Add the log lines and the process output, search, count."""
    assert any(line.startswith("urllib3") for line in logs.lines), "DEBUG logs were not captured"
    for n, line in enumerate(logs.lines):
        places.add(f"log line {n}", line)
    out, err = capfd.readouterr()
    for n, line in enumerate((out + err).splitlines()):
        places.add(f"output line {n}", line)
    issued = {f"access token {n}": token for n, token in enumerate(emulator.state.tokens._expiry)}
    everything = {**secrets, **issued}
    leaks = places.search(everything)
    record("secrets_checked", len(everything))
    record("secret_places_searched", len(places.texts))
    assert leaks == [], f"{len(leaks)} secret occurrence(s), first: {leaks[:5]}"
