"""AmcClient (requests) against requests-mock: headers, token cache, retries, errors, parsing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import requests_mock as rm
import urllib3.exceptions
from amc_client_fakes import (
    ACCESS_TOKEN,
    ADVERTISER_ID,
    API,
    CLIENT_ID,
    CLIENT_SECRET,
    MARKETPLACE_ID,
    REFRESH_TOKEN,
    REPORTING,
    SECRETS,
    TOKEN_URL,
    execution_json,
    make_settings,
)

from airflow_provider_amc.client import (
    AmcApiError,
    AmcAuthError,
    AmcClient,
    AmcConfigError,
    AmcDownloadExpiredError,
    AmcError,
    AmcNotFoundError,
    AmcResponseError,
    AmcServerError,
    AmcSettings,
    AmcThrottledError,
    AmcTransportError,
    CreateExecutionRequest,
    TokenCache,
    Workflow,
)
from airflow_provider_amc.lifecycle import normalise_status

EXECUTION_URL = f"{REPORTING}/workflowExecutions/e-1"
WF = Workflow(workflow_id="wf", sql_query="SELECT 1")
WORKFLOWS_MT = "application/vnd.amcworkflows.v1+json"
EXECUTIONS_MT = "application/vnd.amcworkflowexecutions.v1+json"


@pytest.fixture
def mock() -> Any:
    with rm.Mocker() as m:
        m.post(TOKEN_URL, json={"access_token": ACCESS_TOKEN, "token_type": "bearer", "expires_in": 3600})
        yield m


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def client(settings: AmcSettings, sleeps: list[float]) -> Any:
    with AmcClient(settings, sleep=sleeps.append, jitter=lambda cap: cap) as c:
        yield c


def api_calls(mock: Any) -> list[Any]:
    return [r for r in mock.request_history if r.url.split("?")[0] != TOKEN_URL]


def token_calls(mock: Any) -> list[Any]:
    return [r for r in mock.request_history if r.url == TOKEN_URL]


def request(**overrides: Any) -> CreateExecutionRequest:
    values: dict[str, Any] = {
        "workflow_id": "wf",
        "time_window_type": "EXPLICIT",
        "time_window_start": "2024-01-01T00:00:00",
        "time_window_end": "2024-01-08T00:00:00",
        "time_window_time_zone": "America/New_York",
        "output_format": "CSV",
    }
    return CreateExecutionRequest(**(values | overrides))


# ---- every operation sends the four identity headers and the vendor media type -------------------------
OPERATIONS: list[tuple[str, str, str, Any, Callable[[AmcClient], Any], str | None]] = [
    ("POST", f"{REPORTING}/workflows", WORKFLOWS_MT, {}, lambda c: c.create_workflow(WF), WORKFLOWS_MT),
    ("PUT", f"{REPORTING}/workflows/wf", WORKFLOWS_MT, {}, lambda c: c.update_workflow(WF), WORKFLOWS_MT),
    (
        "GET",
        f"{REPORTING}/workflows/wf",
        WORKFLOWS_MT,
        {"workflowId": "wf"},
        lambda c: c.get_workflow("wf"),
        None,
    ),
    ("DELETE", f"{REPORTING}/workflows/wf", WORKFLOWS_MT, {}, lambda c: c.delete_workflow("wf"), None),
    ("GET", f"{REPORTING}/workflows", WORKFLOWS_MT, {"workflows": []}, lambda c: c.list_workflows(), None),
    (
        "POST",
        f"{REPORTING}/workflowExecutions",
        EXECUTIONS_MT,
        execution_json(),
        lambda c: c.create_execution(request()),
        EXECUTIONS_MT,
    ),
    ("GET", EXECUTION_URL, EXECUTIONS_MT, execution_json(), lambda c: c.get_execution("e-1"), None),
    (
        "GET",
        f"{REPORTING}/workflowExecutions",
        EXECUTIONS_MT,
        {"executions": []},
        lambda c: c.list_executions(workflow_id="wf"),
        None,
    ),
    ("PUT", EXECUTION_URL, EXECUTIONS_MT, {}, lambda c: c.cancel_execution("e-1"), EXECUTIONS_MT),
    (
        "GET",
        f"{EXECUTION_URL}/downloadUrls",
        EXECUTIONS_MT,
        {"downloadUrls": []},
        lambda c: c.get_download_urls("e-1"),
        None,
    ),
    ("GET", f"{API}/amc/accounts", None, {"amcAccounts": []}, lambda c: c.list_accounts(), None),
    ("GET", f"{API}/amc/instances", None, {"instances": []}, lambda c: c.list_instances(), None),
]


@pytest.mark.parametrize(("method", "url", "accept", "answer", "invoke", "content_type"), OPERATIONS)
def test_every_operation_sends_identity_headers(
    mock: Any,
    client: AmcClient,
    method: str,
    url: str,
    accept: str | None,
    answer: Any,
    invoke: Any,
    content_type: str | None,
) -> None:
    mock.register_uri(method, url, json=answer)
    invoke(client)
    (call,) = api_calls(mock)
    assert (call.method, call.url.split("?")[0]) == (method, url)
    assert call.headers["Amazon-Advertising-API-ClientId"] == CLIENT_ID
    assert call.headers["Authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert call.headers["Amazon-Advertising-API-AdvertiserId"] == ADVERTISER_ID
    assert call.headers["Amazon-Advertising-API-MarketplaceId"] == MARKETPLACE_ID
    if accept:
        assert call.headers["Accept"] == accept
    assert call.headers.get("Content-Type") == content_type


def test_token_request_is_the_form_encoded_refresh_grant(
    mock: Any, client: AmcClient, settings: AmcSettings
) -> None:
    assert client.get_access_token() == ACCESS_TOKEN
    (call,) = token_calls(mock)
    assert call.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(call.text) == {
        "grant_type": ["refresh_token"],
        "refresh_token": [settings.refresh_token.get_secret_value()],
        "client_id": [CLIENT_ID],
        "client_secret": [CLIENT_SECRET],
    }
    assert "Authorization" not in call.headers


def test_token_is_shared_by_every_client_of_the_same_credentials(mock: Any, settings: AmcSettings) -> None:
    mock.get(EXECUTION_URL, json=execution_json())
    clients = [AmcClient(settings) for _ in range(5)]
    for c in clients:
        c.get_execution("e-1")
        c.get_execution("e-1")
    assert len(token_calls(mock)) == 1
    assert len(api_calls(mock)) == 10
    AmcClient(make_settings(refresh_token="Atzr|another-user")).get_access_token()
    assert len(token_calls(mock)) == 2, "different credentials must not share the token"


def test_token_refreshed_shortly_before_expiry(mock: Any, settings: AmcSettings) -> None:
    now = [1000.0]
    cache = TokenCache(clock=lambda: now[0])
    client = AmcClient(settings, token_cache=cache)
    client.get_access_token()
    now[0] += 3600 - 301  # more than 5 minutes left: still cached
    client.get_access_token()
    assert len(token_calls(mock)) == 1
    now[0] += 2  # within 5 minutes of expiry: refresh
    client.get_access_token()
    assert len(token_calls(mock)) == 2


def test_on_new_token_callback_sees_each_token(mock: Any, settings: AmcSettings) -> None:
    seen: list[str] = []
    client = AmcClient(settings, on_new_token=seen.append)
    client.get_access_token()
    client.get_access_token()
    assert seen == [ACCESS_TOKEN]


@pytest.mark.parametrize("status", [401, 403])
def test_refused_token_is_refreshed_once_then_call_succeeds(
    mock: Any, client: AmcClient, status: int
) -> None:
    mock.post(
        TOKEN_URL,
        [
            {"json": {"access_token": "Atza|old", "expires_in": 3600}},
            {"json": {"access_token": "Atza|new", "expires_in": 3600}},
        ],
    )
    mock.get(
        EXECUTION_URL,
        [
            {"status_code": status, "json": {"code": str(status), "details": "Unauthorized request."}},
            {"json": execution_json(status="RUNNING")},
        ],
    )
    assert client.get_execution("e-1").status == "RUNNING"
    assert [c.headers["Authorization"] for c in api_calls(mock)] == ["Bearer Atza|old", "Bearer Atza|new"]
    assert len(token_calls(mock)) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_refused_twice_raises_auth_error(mock: Any, client: AmcClient, status: int) -> None:
    mock.get(
        EXECUTION_URL,
        status_code=status,
        json={"code": str(status), "details": "Authentication failed"},
        headers={"x-amz-request-id": "RID123"},
    )
    with pytest.raises(AmcAuthError) as info:
        client.get_execution("e-1")
    assert len(api_calls(mock)) == 2
    assert (info.value.status_code, info.value.details, info.value.request_id) == (
        status,
        "Authentication failed",
        "RID123",
    )


def test_lwa_error_becomes_auth_error_with_status_and_oauth_code_only(mock: Any, client: AmcClient) -> None:
    """Nothing but the status and the OAuth ``error`` code: the rest of a token answer may echo secrets."""
    mock.post(TOKEN_URL, status_code=400, json={"error": "invalid_grant", "error_description": "revoked x"})
    with pytest.raises(AmcAuthError) as info:
        client.get_execution("e-1")
    assert (info.value.error, info.value.error_description, info.value.status_code) == (
        "invalid_grant",
        None,
        400,
    )
    assert (info.value.details, info.value.code) == (None, None)
    assert str(info.value) == (
        "Login with Amazon refused the token request (HTTP 400, OAuth error invalid_grant): check "
        "refresh_token (revoked, expired, or issued to another client id than client_id)"
    )
    assert api_calls(mock) == []


@pytest.mark.parametrize(
    ("status", "code", "hint"),
    [
        (
            401,
            "invalid_client",
            ": check client_id and client_secret (the amc connection's Login and Password)",
        ),
        (400, "unauthorized_client", ": check client_id (the amc connection's Login)"),
        (400, "server_error", ""),
        (400, None, ""),
    ],
)
def test_lwa_error_names_the_settings_to_check(
    mock: Any, client: AmcClient, status: int, code: str | None, hint: str
) -> None:
    mock.post(TOKEN_URL, status_code=status, json={"error": code} if code else {})
    with pytest.raises(AmcAuthError) as info:
        client.get_access_token()
    assert str(info.value).endswith(f"{code or f'HTTP {status}'}){hint}")


@pytest.mark.parametrize(
    "body",
    [
        b'{"error": "invalid_grant Atzr|secret", "error_description": "Atzr|secret"}',
        b"<html><body>refresh_token=Atzr%7Csecret</body></html>",
        b'{"access_token": "Atza|x", "refresh_token": "Atzr|sec',
    ],
)
def test_token_answer_body_never_enters_the_message(mock: Any, client: AmcClient, body: bytes) -> None:
    mock.post(TOKEN_URL, status_code=400 if b"html" in body or b"error" in body else 200, content=body)
    with pytest.raises(AmcError) as info:
        client.get_access_token()
    assert "sec" not in str(info.value).replace("request", "")
    assert "secret" not in repr(vars(info.value))


def test_retry_after_is_honoured(mock: Any, client: AmcClient, sleeps: list[float]) -> None:
    mock.get(
        EXECUTION_URL,
        [
            {"status_code": 429, "headers": {"Retry-After": "2.5"}, "json": {"code": "429"}},
            {"json": execution_json()},
        ],
    )
    client.get_execution("e-1")
    assert sleeps == [2.5]


def test_backoff_grows_and_is_capped(mock: Any, client: AmcClient, sleeps: list[float]) -> None:
    mock.get(EXECUTION_URL, [{"status_code": 503, "text": "busy"}] * 3 + [{"json": execution_json()}])
    client.get_execution("e-1")
    assert sleeps == [1.0, 2.0, 3.0]  # base 1, doubling, capped at backoff_max=3 (jitter = cap here)


def test_full_jitter_stays_within_the_cap(mock: Any, settings: AmcSettings) -> None:
    sleeps: list[float] = []
    client = AmcClient(settings, sleep=sleeps.append)
    mock.get(EXECUTION_URL, [{"status_code": 502}] * 3 + [{"json": execution_json()}])
    client.get_execution("e-1")
    assert len(sleeps) == 3 and all(0 <= s <= cap for s, cap in zip(sleeps, [1, 2, 3], strict=True))


def test_server_errors_exhaust_attempts(mock: Any, client: AmcClient) -> None:
    mock.get(EXECUTION_URL, status_code=500, json={"code": "500", "message": "Internal failure"})
    with pytest.raises(AmcServerError, match="Internal failure") as info:
        client.get_execution("e-1")
    assert len(api_calls(mock)) == 4 and info.value.status_code == 500


def test_throttled_after_all_attempts(mock: Any, client: AmcClient) -> None:
    mock.get(
        EXECUTION_URL,
        status_code=429,
        headers={"Retry-After": "1"},
        json={"code": "429", "details": "slow down"},
    )
    with pytest.raises(AmcThrottledError) as info:
        client.get_execution("e-1")
    assert info.value.retry_after == 1.0 and len(api_calls(mock)) == 4


# ---- a create POST that may have reached AMC is never repeated ---------------------------------------
def test_create_execution_not_retried_after_read_timeout(mock: Any, client: AmcClient) -> None:
    mock.post(f"{REPORTING}/workflowExecutions", exc=requests.exceptions.ReadTimeout("read timed out"))
    with pytest.raises(AmcTransportError, match="may have reached AMC"):
        client.create_execution(request())
    assert len(api_calls(mock)) == 1


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_create_execution_not_retried_after_server_error(mock: Any, client: AmcClient, status: int) -> None:
    mock.post(f"{REPORTING}/workflowExecutions", status_code=status, json={"code": str(status)})
    with pytest.raises(AmcServerError):
        client.create_execution(request())
    assert len(api_calls(mock)) == 1


def test_create_workflow_not_retried_after_dropped_connection(mock: Any, client: AmcClient) -> None:
    mock.post(f"{REPORTING}/workflows", exc=requests.exceptions.ConnectionError("Connection aborted"))
    with pytest.raises(AmcTransportError):
        client.create_workflow(Workflow(workflow_id="wf", sql_query="SELECT 1"))
    assert len(api_calls(mock)) == 1


def test_create_execution_retried_after_429_and_refused_connection(mock: Any, client: AmcClient) -> None:
    refused = requests.exceptions.ConnectionError(urllib3.exceptions.NewConnectionError(None, "refused"))
    mock.post(
        f"{REPORTING}/workflowExecutions",
        [{"exc": refused}, {"status_code": 429, "json": {}}, {"json": execution_json("e-9")}],
    )
    assert client.create_execution(request()).workflow_execution_id == "e-9"
    assert len(api_calls(mock)) == 3


def test_get_retried_after_connection_error(mock: Any, client: AmcClient) -> None:
    mock.get(
        EXECUTION_URL, [{"exc": requests.exceptions.ConnectionError("reset")}, {"json": execution_json()}]
    )
    assert client.get_execution("e-1").workflow_execution_id == "e-1"
    assert len(api_calls(mock)) == 2


def test_transport_error_after_all_attempts(mock: Any, client: AmcClient) -> None:
    mock.get(EXECUTION_URL, exc=requests.exceptions.ReadTimeout("slow"))
    with pytest.raises(AmcTransportError, match="after 4 attempt"):
        client.get_execution("e-1")


# ---- parsing ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("enveloped", [False, True])
def test_execution_flat_or_enveloped(mock: Any, client: AmcClient, enveloped: bool) -> None:
    body = execution_json(status="SUCCEEDED", outputS3URI="N/A", newField={"x": 1}, statusReason=None)
    mock.get(EXECUTION_URL, json={"workflowExecution": body} if enveloped else body)
    execution = client.get_execution("e-1")
    assert (execution.status, execution.output_s3_uri, execution.model_extra) == (
        "SUCCEEDED",
        "N/A",
        {"newField": {"x": 1}},
    )


@pytest.mark.parametrize("enveloped", [False, True])
def test_workflow_flat_or_enveloped(mock: Any, client: AmcClient, enveloped: bool) -> None:
    body = {
        "workflowId": "wf",
        "sqlQuery": "SELECT 2",
        "inputParameters": [{"name": "p", "dataType": "STRING"}],
    }
    mock.get(f"{REPORTING}/workflows/wf", json={"workflow": body} if enveloped else body)
    workflow = client.get_workflow("wf")
    assert (workflow.sql_query, workflow.input_parameters[0].name) == ("SELECT 2", "p")  # type: ignore[index]


def test_unknown_status_parses_and_counts_as_running(mock: Any, client: AmcClient, caplog: Any) -> None:
    mock.get(EXECUTION_URL, json=execution_json(status="PUBLISHING"))
    execution = client.get_execution("e-1")
    with caplog.at_level(logging.WARNING):
        assert normalise_status(execution.status) == "running"
    assert "PUBLISHING" in caplog.text


def test_create_workflow_accepts_octet_stream_empty_object(mock: Any, client: AmcClient) -> None:
    mock.post(f"{REPORTING}/workflows", content=b"{}", headers={"Content-Type": "application/octet-stream"})
    assert client.create_workflow(Workflow(workflow_id="wf", sql_query="SELECT 1")) is None


# ---- error types ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "body", "error", "text"),
    [
        (404, {"code": "404", "details": "Not found"}, AmcNotFoundError, "Not found"),
        (
            400,
            {"code": "400", "details": "Workflow execution with ID e-1 does not exist."},
            AmcNotFoundError,
            "does not exist",
        ),
        (400, {"code": "400", "message": "Bad window"}, AmcApiError, "Bad window"),
        (422, {"code": "422", "statusReason": "Too many executions"}, AmcApiError, "Too many executions"),
        (400, b"<html><body>Bad gateway thing</body></html>", AmcApiError, "Bad gateway thing"),
        (400, {"Message": "Invalid request body"}, AmcApiError, "Invalid request body"),
        (400, {"errors": [{"reason": "Unknown field timeZone"}]}, AmcApiError, "Unknown field timeZone"),
    ],
)
def test_error_answers_are_typed(
    mock: Any, client: AmcClient, status: int, body: Any, error: type, text: str
) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    mock.get(EXECUTION_URL, status_code=status, headers={"x-amz-request-id": "RID9"}, **kwargs)
    with pytest.raises(error) as info:
        client.get_execution("e-1")
    assert type(info.value) is error
    assert text in str(info.value) and info.value.status_code == status and info.value.request_id == "RID9"
    assert len(api_calls(mock)) == 1, "client errors are not retried"


@pytest.mark.parametrize("key", ["details", "message", "Message", "statusReason"])
def test_an_error_answer_is_quoted_by_its_text_not_its_json(mock: Any, client: AmcClient, key: str) -> None:
    """AMC's ``details``, a gateway's ``message``/``Message``: the message quotes the text itself."""
    mock.get(EXECUTION_URL, status_code=400, json={key: "Invalid request body"})
    with pytest.raises(AmcApiError) as info:
        client.get_execution("e-1")
    assert str(info.value).endswith("HTTP 400: Invalid request body")
    assert info.value.details == "Invalid request body"


@pytest.mark.parametrize(
    "raw",
    [
        b'{"workflowExecutionId": "e-1", "sta',
        b"<!DOCTYPE html><html>maintenance</html>",
        b'["a list"]',
        b"{}",
    ],
)
def test_malformed_success_body_raises_response_error(mock: Any, client: AmcClient, raw: bytes) -> None:
    mock.get(EXECUTION_URL, content=raw)
    with pytest.raises(AmcResponseError, match="HTTP 200") as info:
        client.get_execution("e-1")
    assert info.value.status_code == 200


def test_html_snippet_in_response_error(mock: Any, client: AmcClient) -> None:
    mock.get(EXECUTION_URL, content=b"<html>" + b"x" * 5000)
    with pytest.raises(AmcResponseError) as info:
        client.get_execution("e-1")
    assert "<html>xxx" in str(info.value) and len(str(info.value)) < 600


def test_missing_instance_id_fails_before_any_http(mock: Any) -> None:
    client = AmcClient(make_settings(instance_id=None))
    with pytest.raises(AmcConfigError, match="instance_id"):
        client.get_execution("e-1")
    assert mock.request_history == []


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.list_executions(), "workflow_id or min_creation_time"),
        (lambda c: c.list_workflows(page_size=500), "page_size"),
        (lambda c: c.get_execution(""), "execution_id"),
        (lambda c: c.get_workflow(None), "workflow_id"),
        (lambda c: c.create_execution({"workflowId": "wf"}), "CreateExecutionRequest"),
        (lambda c: c.iter_download("https://x/y", chunk_size=0), "chunk_size"),
    ],
)
def test_bad_arguments_fail_before_any_http(mock: Any, client: AmcClient, call: Any, field: str) -> None:
    with pytest.raises(AmcConfigError, match=field):
        call(client)
    assert mock.request_history == []


# ---- operations -------------------------------------------------------------------------------------------
def test_cancel_true_then_false_when_already_terminal(mock: Any, client: AmcClient) -> None:
    mock.put(
        EXECUTION_URL,
        [{"json": {}}, {"status_code": 400, "json": {"code": "400", "details": "Cannot update"}}],
    )
    assert client.cancel_execution("e-1") is True
    assert client.cancel_execution("e-1") is False
    assert [c.json() for c in api_calls(mock)] == [{"status": "CANCELLED"}] * 2


def test_cancel_unknown_execution_raises_not_found(mock: Any, client: AmcClient) -> None:
    mock.put(EXECUTION_URL, status_code=400, json={"code": "400", "details": "Execution e-1 does not exist."})
    with pytest.raises(AmcNotFoundError):
        client.cancel_execution("e-1")


def test_upsert_creates_skips_or_updates(mock: Any, client: AmcClient) -> None:
    wanted = Workflow(workflow_id="wf", sql_query="SELECT 1")
    stored = {"workflowId": "wf", "sqlQuery": "SELECT 1", "serverAdded": "ignored"}
    mock.get(
        f"{REPORTING}/workflows/wf",
        [
            {"status_code": 404, "json": {"code": "404"}},
            {"json": stored},
            {"json": stored | {"sqlQuery": "SELECT 0"}},
        ],
    )
    mock.post(f"{REPORTING}/workflows", content=b"{}")
    mock.put(f"{REPORTING}/workflows/wf", json={})
    assert [client.upsert_workflow(wanted) for _ in range(3)] == ["created", "unchanged", "updated"]
    writes = [(c.method, c.json()) for c in api_calls(mock) if c.method != "GET"]
    assert writes == [("POST", wanted.to_body()), ("PUT", wanted.to_body())]


def test_list_executions_query_and_pagination(mock: Any, client: AmcClient) -> None:
    url = f"{REPORTING}/workflowExecutions"
    mock.get(
        url,
        [
            {"json": {"executions": [execution_json("a"), execution_json("b")], "nextToken": "t1"}},
            {"json": {"executions": [execution_json("c")]}},
        ],
    )
    found = client.list_executions(
        workflow_id="wf",
        min_creation_time="2024-01-01T00:00:00",
        time_zone="UTC",
        include_cancelled=True,
        page_size=2,
    )
    assert [e.workflow_execution_id for e in found] == ["a", "b", "c"]
    first, second = (c.qs for c in api_calls(mock))
    assert first == {
        "workflowid": ["wf"],
        "mincreationtime": ["2024-01-01t00:00:00"],
        "timezone": ["utc"],
        "includecancelled": ["true"],
        "sortascending": ["false"],
        "limit": ["2"],
    }
    assert second["nexttoken"] == ["t1"]


def test_list_executions_max_items_stops_paging(mock: Any, client: AmcClient) -> None:
    mock.get(
        f"{REPORTING}/workflowExecutions",
        json={"executions": [execution_json("a"), execution_json("b")], "nextToken": "t"},
    )
    assert [e.workflow_execution_id for e in client.list_executions(workflow_id="wf", max_items=3)] == [
        "a",
        "b",
        "a",
    ]
    assert len(api_calls(mock)) == 2


def test_endless_next_tokens_stop_at_the_page_cap(mock: Any, client: AmcClient) -> None:
    """A server that always answers a new nextToken (the lost-create lookup pages executions)."""
    from itertools import count

    from airflow_provider_amc.client.protocol import MAX_LIST_PAGES

    tokens = count()

    def page(request: Any, context: Any) -> dict[str, Any]:
        return {"executions": [], "nextToken": f"t{next(tokens)}"}

    mock.get(f"{REPORTING}/workflowExecutions", json=page)
    with pytest.raises(AmcResponseError, match=f"still answered a nextToken after {MAX_LIST_PAGES} pages"):
        client.list_executions(workflow_id="wf")
    assert len(api_calls(mock)) == MAX_LIST_PAGES


def test_list_workflows_accounts_instances_follow_next_token(mock: Any, client: AmcClient) -> None:
    mock.get(
        f"{REPORTING}/workflows",
        [
            {"json": {"workflows": [{"workflowId": "w1"}], "nextToken": "n"}},
            {"json": {"workflows": [{"workflowId": "w2"}]}},
        ],
    )
    mock.get(f"{API}/amc/accounts", json={"amcAccounts": [{"accountId": "ENT1", "marketplaceId": "M"}]})
    mock.get(f"{API}/amc/instances", json={"instances": [{"instanceId": "amc1", "apiEndpoint": API}]})
    assert [w.workflow_id for w in client.list_workflows()] == ["w1", "w2"]
    assert client.list_accounts()[0].account_id == "ENT1"
    assert client.list_instances()[0].api_endpoint == API


def test_download_urls_parse(mock: Any, client: AmcClient) -> None:
    mock.get(f"{EXECUTION_URL}/downloadUrls", json={"downloadUrls": ["https://s3/a?X-Amz-Expires=600"]})
    urls = client.get_download_urls("e-1")
    assert (urls.download_urls, urls.metadata_download_urls) == (["https://s3/a?X-Amz-Expires=600"], [])


# ---- downloads --------------------------------------------------------------------------------------------
DOWNLOAD = "https://bucket.s3.amazonaws.com/part-0.csv?X-Amz-Expires=600&X-Amz-Signature=abc"


def test_iter_download_streams_without_auth_headers(mock: Any, client: AmcClient) -> None:
    payload = b"a,b\n" + b"1,2\n" * 1000
    mock.get(DOWNLOAD, content=payload)
    chunks = list(client.iter_download(DOWNLOAD, chunk_size=1024))
    assert b"".join(chunks) == payload and max(map(len, chunks)) <= 1024 and len(chunks) > 1
    (call,) = mock.request_history
    assert not {"Authorization", "Amazon-Advertising-API-ClientId"} & set(call.headers)


def test_iter_download_expired_url(mock: Any, client: AmcClient) -> None:
    mock.get(
        DOWNLOAD,
        status_code=403,
        content=b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>",
    )
    with pytest.raises(AmcDownloadExpiredError, match="Request has expired"):
        list(client.iter_download(DOWNLOAD))
    assert len(mock.request_history) == 1


def test_iter_download_retries_before_first_byte(mock: Any, client: AmcClient, sleeps: list[float]) -> None:
    mock.get(
        DOWNLOAD,
        [{"status_code": 503}, {"exc": requests.exceptions.ConnectionError("reset")}, {"content": b"x,y\n"}],
    )
    assert b"".join(client.iter_download(DOWNLOAD)) == b"x,y\n"
    assert len(sleeps) == 2


# ---- secrets never leak ------------------------------------------------------------------------------------
def test_secrets_absent_from_reprs_logs_and_errors(
    mock: Any, client: AmcClient, settings: AmcSettings, caplog: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    mock.get(
        EXECUTION_URL,
        [{"status_code": 401, "json": {}}, {"status_code": 503}, {"status_code": 403, "json": {}}],
    )
    with pytest.raises(AmcAuthError) as info:
        client.get_execution("e-1")
    mock.post(
        TOKEN_URL,
        status_code=401,
        json={"error": "invalid_client", "error_description": "Client authentication failed"},
    )
    client._token_cache.clear()
    with pytest.raises(AmcAuthError) as lwa:
        client.get_access_token()
    texts = [
        repr(settings),
        str(settings),
        repr(client),
        str(info.value),
        str(lwa.value),
        caplog.text,
        *(repr(r.args) for r in caplog.records),
    ]
    assert caplog.records, "retries and refreshes are logged"
    for text in texts:
        for secret in SECRETS:
            assert secret not in text


def test_retry_after_beyond_backoff_max_is_honoured_up_to_a_ceiling(
    mock: Any, client: AmcClient, sleeps: list[float]
) -> None:
    mock.get(
        EXECUTION_URL,
        [
            {"status_code": 429, "headers": {"Retry-After": "30"}},
            {"status_code": 429, "headers": {"Retry-After": "300"}},
            {"status_code": 429, "headers": {"Retry-After": "soon"}},
            {"json": execution_json()},
        ],
    )
    client.get_execution("e-1")
    assert sleeps == [30.0, 300.0, 3.0]  # hint > backoff_max honoured up to 300 s; bad hint -> backoff


def test_a_retry_after_longer_than_a_call_waits_ends_the_call_with_the_hint(
    mock: Any, client: AmcClient, sleeps: list[float]
) -> None:
    """No sleeping 300 s and asking again early (spending the rate limit, holding a worker): the
    error carries AMC's hint so the caller can wait without blocking (defer, poll later)."""
    mock.get(
        EXECUTION_URL,
        [
            {"status_code": 429, "headers": {"Retry-After": "301"}, "json": {"details": "slow down"}},
            {"json": execution_json()},
        ],
    )
    with pytest.raises(AmcThrottledError) as info:
        client.get_execution("e-1")
    assert info.value.retry_after == 301.0
    assert "not retried" in str(info.value)
    assert sleeps == [] and len(api_calls(mock)) == 1


@pytest.mark.parametrize(
    "hint",
    ["86401", "inf", "1e300", "99999999999", "Fri, 31 Dec 9999 23:59:59 GMT"],
)
def test_a_huge_retry_after_is_capped_at_a_day(mock: Any, client: AmcClient, hint: str) -> None:
    """A hostile or broken Retry-After (infinite, 3,000 years, the year 9999) must not make a task
    wait for ever: AMC's longest limit is its daily quota, so no hint counts for more than a day
    (the create operator defers by it; the trigger's next poll waits it)."""
    from airflow_provider_amc.client.protocol import MAX_RETRY_AFTER

    mock.get(EXECUTION_URL, [{"status_code": 429, "headers": {"Retry-After": hint}}])
    with pytest.raises(AmcThrottledError) as info:
        client.get_execution("e-1")
    assert info.value.retry_after == MAX_RETRY_AFTER == 86400.0
    assert "Retry-After 86400 s" in str(info.value)


@pytest.mark.parametrize("hint", ["nan", "-5", "-inf"])
def test_a_retry_after_that_is_not_a_wait_falls_back_to_the_backoff(
    mock: Any, client: AmcClient, sleeps: list[float], hint: str
) -> None:
    """Not-a-number or negative seconds are not a valid Retry-After: the client backs off as for a
    429 without one (not retrying at once, which spends the rate limit)."""
    mock.get(
        EXECUTION_URL,
        [{"status_code": 429, "headers": {"Retry-After": hint}}, {"json": execution_json()}],
    )
    client.get_execution("e-1")
    assert sleeps == [1.0]


def test_an_http_date_retry_after_is_gmt_whatever_the_workers_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    """``-0000`` parses to a naive datetime: it is GMT like every HTTP date, not the local time."""
    import time
    from datetime import UTC, datetime

    from airflow_provider_amc.client.protocol import parse_retry_after

    asked = datetime(2015, 10, 21, 7, 27, tzinfo=UTC).timestamp()
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 -0000", now=lambda: asked) == 60.0
        assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=lambda: asked) == 60.0
    finally:
        monkeypatch.undo()
        time.tzset()


# ---- real-shaped answers (amc-api.md, Amazon's OpenAPI file) -------------------------------------------
# List answers are ``{"executions": [...], "nextToken"?}`` (ListWorkflowExecutionsResponse; [SPEC][PM]),
# the key itself not required. An answer carrying its items under another key must not read as "no
# executions": the lost-create lookup would then submit a second run.
def _list_wf_executions(client: AmcClient) -> Any:
    return client.list_executions(workflow_id="wf")


@pytest.mark.parametrize(
    ("call", "path", "answer"),
    [
        (_list_wf_executions, "/workflowExecutions", {"workflowExecutions": []}),
        (_list_wf_executions, "/workflowExecutions", {"items": [], "nextToken": "n"}),
        (lambda c: c.list_workflows(), "/workflows", {"workflowList": [{"workflowId": "w"}]}),
    ],
)
def test_a_list_answer_without_its_items_key_is_an_error_not_an_empty_list(
    mock: Any, client: AmcClient, call: Callable[[AmcClient], Any], path: str, answer: dict[str, Any]
) -> None:
    mock.get(f"{REPORTING}{path}", json=answer)
    key = "executions" if "Executions" in path else "workflows"
    with pytest.raises(AmcResponseError, match=f"no {key!r} list"):
        call(client)


@pytest.mark.parametrize("answer", [{}, {"executions": []}, {"executions": None, "nextToken": None}])
def test_an_empty_list_answer_is_an_empty_list(mock: Any, client: AmcClient, answer: dict[str, Any]) -> None:
    mock.get(f"{REPORTING}/workflowExecutions", json=answer)
    assert client.list_executions(workflow_id="wf") == []


# Error bodies are quoted in messages (``details``, ``message``): a gateway or a proxy that echoes the
# request (the bearer token, the form) must not put a secret into an exception, a log or XCom.
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, {"code": "400", "details": f"Invalid header Authorization: Bearer {ACCESS_TOKEN}"}),
        (401, {"message": f"token {ACCESS_TOKEN} expired"}),
        (403, {"code": "403", "details": f"refresh_token={REFRESH_TOKEN}&client_secret={CLIENT_SECRET}"}),
        (502, f"<html>upstream said Authorization: Bearer {ACCESS_TOKEN}</html>".encode()),
    ],
)
def test_secrets_echoed_in_an_error_body_are_redacted(
    mock: Any, client: AmcClient, status: int, body: Any
) -> None:
    kwargs = {"content": body} if isinstance(body, bytes) else {"json": body}
    mock.get(EXECUTION_URL, status_code=status, **kwargs)
    with pytest.raises(AmcApiError) as info:
        client.get_execution("e-1")
    texts = [str(info.value), repr(info.value.details), repr(info.value.code)]
    for secret in SECRETS:
        assert not any(secret in text for text in texts), (secret, texts)
    assert "***" in str(info.value), "the rest of the message is kept"


def test_an_lwa_token_of_another_client_is_redacted_too(mock: Any, client: AmcClient) -> None:
    echo = {"details": "got Atza|IwEBIOtherToken-x_y.z and Atzr|Other"}
    mock.get(EXECUTION_URL, status_code=400, json=echo)
    with pytest.raises(AmcApiError) as info:
        client.get_execution("e-1")
    assert "Atza|IwEB" not in str(info.value) and "Atzr|Other" not in str(info.value)
    assert "Atza|***" in str(info.value)


def test_the_access_token_in_use_is_redacted_whatever_its_form(mock: Any, client: AmcClient) -> None:
    """A token endpoint other than LwA's (``token_url``) may issue tokens without the ``Atza|`` prefix."""
    mock.post(TOKEN_URL, json={"access_token": "opaque-token-DO-NOT-LOG", "expires_in": 3600})
    mock.get(EXECUTION_URL, status_code=401, json={"details": "bad bearer opaque-token-DO-NOT-LOG"})
    with pytest.raises(AmcAuthError) as info:
        client.get_execution("e-1")
    assert "opaque-token" not in str(info.value) and "opaque-token" not in str(info.value.details)


# WorkflowExecution in Amazon's OpenAPI file has no ``required`` list: ``status`` may be absent or
# null. A create answer without it must still give the execution id (AMC has created the run; losing
# the id would submit a second one) and count as not finished; a *status* answer without one says
# nothing about the run and is a clear error (never a success).
@pytest.mark.parametrize("status", [{}, {"status": None}, {"status": ""}])
def test_an_execution_without_status_keeps_its_id_and_is_not_finished(
    mock: Any, client: AmcClient, status: dict[str, Any]
) -> None:
    from airflow_provider_amc.lifecycle import AmcStatus

    answer = {"workflowExecutionId": "b3a77999-7c8e-4289-9bf9-5da8f178536c", "workflowId": "wf", **status}
    mock.post(f"{REPORTING}/workflowExecutions", json=answer)
    mock.get(f"{REPORTING}/workflowExecutions/{answer['workflowExecutionId']}", json=answer)
    created = client.create_execution(CreateExecutionRequest(workflow_id="wf", time_window_type="ALL"))
    assert created.workflow_execution_id == answer["workflowExecutionId"]
    assert not AmcStatus.parse(created.status).is_terminal
    with pytest.raises(AmcResponseError, match="no status for execution"):
        client.get_execution(created.workflow_execution_id)


def test_download_urls_with_null_lists_and_token_parse(mock: Any, client: AmcClient) -> None:
    """GetWorkflowExecutionDownloadUrlsResponse: no field is required and ``nextToken`` is "Null if
    all results have been returned" (spec): a null metadata list is no metadata, not a bad answer."""
    url = "https://s3.amazonaws.com/b/workflow=wf/schedule=adhoc/x.csv?X-Amz-Expires=600"
    mock.get(
        f"{EXECUTION_URL}/downloadUrls",
        json={"downloadUrls": [url], "metadataDownloadUrls": None, "nextToken": None},
    )
    urls = client.get_download_urls("e-1")
    assert (urls.download_urls, urls.metadata_download_urls, urls.next_token) == ([url], [], None)
    mock.get(f"{EXECUTION_URL}/downloadUrls", json={"downloadUrls": None})
    with pytest.raises(AmcResponseError, match="lists no result file"):
        client.result_urls("e-1")
