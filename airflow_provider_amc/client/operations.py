"""The public client operations, written once for both transports.

Each method decorated with :class:`operation` validates its arguments, describes the HTTP
operation(s) as data and returns a *flow* (see :mod:`.protocol`). The descriptor hands that flow
to the client's ``_run``: :class:`~.sync.AmcClient` runs it to completion and returns the value,
:class:`~.aio.AsyncAmcClient` returns a coroutine. Typing follows the runner: for the sync client
``get_workflow(...)`` is typed ``-> Workflow``, for the async one ``-> Coroutine[..., Workflow]``.
"""

from __future__ import annotations

import functools
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Coroutine
from typing import Any, Concatenate, Final, Generic, Literal, ParamSpec, TypeVar, overload
from urllib.parse import quote

from pydantic import BaseModel

from airflow_provider_amc.client.auth import TOKEN_CACHE, TokenCache, token_flow, token_key
from airflow_provider_amc.client.errors import AmcApiError, AmcConfigError, AmcNotFoundError, AmcResponseError
from airflow_provider_amc.client.ids import check_id
from airflow_provider_amc.client.models import (
    AmcAccount,
    AmcInstance,
    CreateExecutionRequest,
    DownloadUrls,
    ListPage,
    Workflow,
    WorkflowExecution,
)
from airflow_provider_amc.client.protocol import (
    ACCOUNTS_MEDIA_TYPE,
    EXECUTIONS_MEDIA_TYPE,
    INSTANCES_MEDIA_TYPE,
    WORKFLOWS_MEDIA_TYPE,
    CallContext,
    Flow,
    GetToken,
    HttpResponse,
    Kind,
    Operation,
    call,
    call_json,
    full_jitter,
    paginate,
    parse_with,
)
from airflow_provider_amc.client.settings import AmcSettings
from airflow_provider_amc.client.transport import Transport

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")
ModelT = TypeVar("ModelT", bound=BaseModel)
UpsertResult = Literal["created", "updated", "unchanged"]
MAX_PAGE_SIZE: Final = 100
CANCELLED_BODY: Final = {"status": "CANCELLED"}


class ClientBase:
    """State shared by both clients: settings, call context, token cache and its key."""

    def __init__(
        self,
        settings: AmcSettings,
        *,
        token_cache: TokenCache | None = None,
        jitter: Callable[[float], float] = full_jitter,
        on_new_token: Callable[[str], None] | None = None,
    ) -> None:
        if not isinstance(settings, AmcSettings):
            raise AmcConfigError(f"settings must be an AmcSettings instance, got {type(settings).__name__}")
        self.settings = settings
        self._ctx = CallContext(settings, jitter)
        self._transport = Transport(settings)
        self._token_cache = TOKEN_CACHE if token_cache is None else token_cache
        self._token_key = token_key(settings)
        self._on_new_token = on_new_token
        self._last_token: str | None = None

    def __repr__(self) -> str:
        s = self.settings
        name = type(self).__name__
        return f"{name}(api={s.api_base_url!r}, client_id={s.client_id!r}, advertiser_id={s.advertiser_id!r})"

    def _token_flow(self) -> Flow[tuple[str, float]]:
        return token_flow(self._ctx)

    def _seen_token(self, token: str) -> str:
        """Tell ``on_new_token`` (e.g. a secrets masker) about each token this client uses."""
        if token != self._last_token:
            self._last_token = token
            if self._on_new_token is not None:
                self._on_new_token(token)
        return token


class SyncRunner(ClientBase, ABC):
    """Marker base of clients whose operations return values."""

    @abstractmethod
    def _run(self, flow: Flow[T]) -> T: ...


class AsyncRunner(ClientBase, ABC):
    """Marker base of clients whose operations return coroutines."""

    @abstractmethod
    async def _run(self, flow: Flow[T]) -> T: ...


class operation(Generic[P, T]):
    """Turn a flow-building method into a client method (value for sync, coroutine for async)."""

    def __init__(self, build: Callable[Concatenate[Any, P], Flow[T]]) -> None:
        self._build = build
        self.__doc__ = build.__doc__
        self.__name__ = build.__name__

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> operation[P, T]: ...
    @overload
    def __get__(self, obj: SyncRunner, owner: type[Any]) -> Callable[P, T]: ...
    @overload
    def __get__(self, obj: AsyncRunner, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, T]]: ...
    def __get__(self, obj: Any, owner: type[Any]) -> Any:
        if obj is None:
            return self
        build = self._build

        @functools.wraps(build)
        def bound(*args: Any, **kwargs: Any) -> Any:
            return obj._run(build(obj, *args, **kwargs))

        return bound


def _required(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise AmcConfigError(f"{field} is required and must be a non-empty string (got {value!r})")
    return value


def _page_size(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_PAGE_SIZE:
        raise AmcConfigError(f"page_size must be an integer from 1 to {MAX_PAGE_SIZE} (got {value!r})")
    return str(value)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _model(ctx: CallContext, op: Operation, parse: Callable[[Any], T]) -> Flow[T]:
    body = yield from call_json(ctx, op)
    return parse_with(op, parse, body)


def _no_content(ctx: CallContext, op: Operation) -> Flow[None]:
    yield from call(ctx, op)


def _pages(
    ctx: CallContext,
    make_op: Callable[[str | None], Operation],
    items_key: str,
    model: type[ModelT],
    max_items: int | None = None,
) -> Flow[list[ModelT]]:
    def parse(body: Any) -> tuple[list[ModelT], str | None]:
        page = ListPage[ModelT].parse(body, items_key, model)
        return page.items, page.next_token

    return paginate(ctx, make_op, parse, max_items)


def _upsert(
    ctx: CallContext, get: Operation, create: Operation, update: Operation, wanted: Workflow
) -> Flow[UpsertResult]:
    try:
        current = yield from _model(ctx, get, Workflow.model_validate)
    except AmcNotFoundError:
        yield from _no_content(ctx, create)
        return "created"
    if current.definition() == wanted.definition():
        return "unchanged"
    yield from _no_content(ctx, update)
    return "updated"


def _cancel(ctx: CallContext, op: Operation) -> Flow[bool]:
    try:
        yield from call(ctx, op)
    except AmcNotFoundError:
        raise
    except AmcApiError as exc:
        if exc.status_code == 400:
            log.info("%s: AMC says the execution is already finished (%s)", op.label, exc.details)
            return False
        raise
    return True


def _about(execution_id: str, flow: Flow[WorkflowExecution], op: Operation) -> Flow[WorkflowExecution]:
    """The execution ``flow`` returns, which must be ``execution_id`` and have a status: an answer
    about another execution is an error (recording it would attach another run's status or data
    to this one), and so is a status answer without one (it says nothing about the run)."""
    execution = yield from flow
    if execution.workflow_execution_id != execution_id:
        raise AmcResponseError(
            f"{op.label} answered about execution {execution.workflow_execution_id!r}, "
            f"not the one asked for ({execution_id!r})",
            status_code=200,
        )
    if not execution.status:
        raise AmcResponseError(
            f"{op.label} answered HTTP 200 with an unexpected body: no status for execution {execution_id!r}",
            status_code=200,
        )
    return execution


def _token_only() -> Flow[str]:
    token: str = yield GetToken()
    return token


def download_flow(ctx: CallContext, url: str) -> Flow[HttpResponse]:
    """Open a pre-signed URL (no auth headers); transient errors are retried before the first byte."""
    return call(ctx, Operation("GET", _required("url", url), kind=Kind.DOWNLOAD, stream=True))


class AmcOperations(ClientBase):
    """Every AMC operation, defined once; see the module docstring for how it runs."""

    # ---- helpers --------------------------------------------------------------------------------
    def _instance(self, instance_id: str | None) -> str:
        resolved = instance_id or self.settings.instance_id
        if not resolved:
            raise AmcConfigError("instance_id is required: pass instance_id=... or set it in the settings")
        return check_id("instance_id", resolved)

    def _url(self, instance_id: str | None, *segments: str) -> str:
        """A reporting URL; every path segment is checked as an AMC id (callers name the field
        first; this is the last guard), whether it came from a user or from an AMC answer."""
        parts = (self._instance(instance_id), *(check_id("path segment", segment) for segment in segments))
        path = "/".join(quote(segment, safe="") for segment in parts)
        return f"{self.settings.api_base_url}/amc/reporting/{path}"

    def _workflow_op(
        self, method: str, workflow: Workflow, instance_id: str | None, *, by_id: bool
    ) -> Operation:
        if not isinstance(workflow, Workflow):
            raise AmcConfigError(f"workflow must be a Workflow, got {type(workflow).__name__}")
        check_id("workflow.workflow_id", workflow.workflow_id)
        segments = ("workflows", workflow.workflow_id) if by_id else ("workflows",)
        url = self._url(instance_id, *segments)
        return Operation(
            method, url, WORKFLOWS_MEDIA_TYPE, json_body=workflow.to_body(), idempotent=method != "POST"
        )

    def _execution_url(self, execution_id: str, instance_id: str | None, *extra: str) -> str:
        return self._url(instance_id, "workflowExecutions", check_id("execution_id", execution_id), *extra)

    # ---- authentication ---------------------------------------------------------------------------
    @operation
    def get_access_token(self) -> Flow[str]:
        """A valid LwA access token (from the process-wide cache, refreshed when needed)."""
        return _token_only()

    # ---- workflows --------------------------------------------------------------------------------
    @operation
    def create_workflow(self, workflow: Workflow, *, instance_id: str | None = None) -> Flow[None]:
        """``POST /workflows`` (not repeated after a timeout: it may have been created)."""
        return _no_content(self._ctx, self._workflow_op("POST", workflow, instance_id, by_id=False))

    @operation
    def update_workflow(self, workflow: Workflow, *, instance_id: str | None = None) -> Flow[None]:
        """``PUT /workflows/{workflowId}``: replace the whole definition."""
        return _no_content(self._ctx, self._workflow_op("PUT", workflow, instance_id, by_id=True))

    @operation
    def get_workflow(self, workflow_id: str, *, instance_id: str | None = None) -> Flow[Workflow]:
        """``GET /workflows/{workflowId}``."""
        url = self._url(instance_id, "workflows", check_id("workflow_id", workflow_id))
        return _model(self._ctx, Operation("GET", url, WORKFLOWS_MEDIA_TYPE), Workflow.model_validate)

    @operation
    def upsert_workflow(self, workflow: Workflow, *, instance_id: str | None = None) -> Flow[UpsertResult]:
        """Create the workflow, or update it only when its definition differs."""
        update = self._workflow_op("PUT", workflow, instance_id, by_id=True)
        create = self._workflow_op("POST", workflow, instance_id, by_id=False)
        get = Operation("GET", update.url, WORKFLOWS_MEDIA_TYPE)
        return _upsert(self._ctx, get, create, update, workflow)

    @operation
    def delete_workflow(self, workflow_id: str, *, instance_id: str | None = None) -> Flow[None]:
        """``DELETE /workflows/{workflowId}``."""
        url = self._url(instance_id, "workflows", check_id("workflow_id", workflow_id))
        return _no_content(self._ctx, Operation("DELETE", url, WORKFLOWS_MEDIA_TYPE))

    @operation
    def list_workflows(
        self, *, instance_id: str | None = None, page_size: int = MAX_PAGE_SIZE
    ) -> Flow[list[Workflow]]:
        """``GET /workflows``, every page."""
        url, limit = self._url(instance_id, "workflows"), _page_size(page_size)

        def page(token: str | None) -> Operation:
            query = {"limit": limit} | ({"nextToken": token} if token else {})
            return Operation("GET", url, WORKFLOWS_MEDIA_TYPE, query=query)

        return _pages(self._ctx, page, "workflows", Workflow)

    # ---- executions -------------------------------------------------------------------------------
    @operation
    def create_execution(
        self, request: CreateExecutionRequest, *, instance_id: str | None = None
    ) -> Flow[WorkflowExecution]:
        """``POST /workflowExecutions`` of a saved workflow. Never repeated once it may have reached
        AMC (timeouts, dropped connections, 5xx); only 429 and refused connections are retried."""
        if not isinstance(request, CreateExecutionRequest):
            raise AmcConfigError(f"request must be a CreateExecutionRequest, got {type(request).__name__}")
        url = self._url(instance_id, "workflowExecutions")
        op = Operation("POST", url, EXECUTIONS_MEDIA_TYPE, json_body=request.to_body(), idempotent=False)
        return _model(self._ctx, op, WorkflowExecution.model_validate)

    @operation
    def get_execution(self, execution_id: str, *, instance_id: str | None = None) -> Flow[WorkflowExecution]:
        """``GET /workflowExecutions/{id}``; an unknown id raises AmcNotFoundError (AMC answers 400)."""
        op = Operation("GET", self._execution_url(execution_id, instance_id), EXECUTIONS_MEDIA_TYPE)
        return _about(execution_id, _model(self._ctx, op, WorkflowExecution.model_validate), op)

    @operation
    def list_executions(
        self,
        *,
        instance_id: str | None = None,
        workflow_id: str | None = None,
        min_creation_time: str | None = None,
        max_creation_time: str | None = None,
        time_zone: str | None = None,
        include_cancelled: bool = False,
        sort_ascending: bool = False,
        page_size: int = MAX_PAGE_SIZE,
        max_items: int | None = None,
    ) -> Flow[list[WorkflowExecution]]:
        """``GET /workflowExecutions`` (AMC needs ``workflow_id`` or ``min_creation_time``)."""
        if not workflow_id and not min_creation_time:
            raise AmcConfigError("list_executions needs workflow_id or min_creation_time (AMC requires one)")
        if max_items is not None and (
            isinstance(max_items, bool) or not isinstance(max_items, int) or max_items < 1
        ):
            raise AmcConfigError(f"max_items must be a positive integer or None (got {max_items!r})")
        url = self._url(instance_id, "workflowExecutions")
        filters = {
            "workflowId": workflow_id,
            "minCreationTime": min_creation_time,
            "maxCreationTime": max_creation_time,
            "timeZone": time_zone,
            "includeCancelled": _flag(include_cancelled),
            "sortAscending": _flag(sort_ascending),
            "limit": _page_size(page_size),
        }
        query = {key: value for key, value in filters.items() if value is not None}

        def page(token: str | None) -> Operation:
            return Operation(
                "GET", url, EXECUTIONS_MEDIA_TYPE, query=query | ({"nextToken": token} if token else {})
            )

        return _pages(self._ctx, page, "executions", WorkflowExecution, max_items)

    @operation
    def cancel_execution(self, execution_id: str, *, instance_id: str | None = None) -> Flow[bool]:
        """``PUT {"status": "CANCELLED"}``; False when AMC answers 400 because it already finished."""
        url = self._execution_url(execution_id, instance_id)
        return _cancel(self._ctx, Operation("PUT", url, EXECUTIONS_MEDIA_TYPE, json_body=CANCELLED_BODY))

    @operation
    def get_download_urls(self, execution_id: str, *, instance_id: str | None = None) -> Flow[DownloadUrls]:
        """``GET /workflowExecutions/{id}/downloadUrls`` (URLs expire after 10 minutes)."""
        op = Operation(
            "GET", self._execution_url(execution_id, instance_id, "downloadUrls"), EXECUTIONS_MEDIA_TYPE
        )
        return _model(self._ctx, op, DownloadUrls.model_validate)

    # ---- accounts and instances ----------------------------------------------------------------------
    def _admin_pages(
        self, path: str, media_type: str, items_key: str, model: type[ModelT]
    ) -> Flow[list[ModelT]]:
        url = f"{self.settings.api_base_url}{path}"

        def page(token: str | None) -> Operation:
            return Operation("GET", url, media_type, query={"nextToken": token} if token else {})

        return _pages(self._ctx, page, items_key, model)

    @operation
    def list_accounts(self) -> Flow[list[AmcAccount]]:
        """``GET /amc/accounts``: the AMC accounts (advertiser ids) the credentials can use."""
        return self._admin_pages("/amc/accounts", ACCOUNTS_MEDIA_TYPE, "amcAccounts", AmcAccount)

    @operation
    def list_instances(self) -> Flow[list[AmcInstance]]:
        """``GET /amc/instances``: the AMC instances of the account."""
        return self._admin_pages("/amc/instances", INSTANCES_MEDIA_TYPE, "instances", AmcInstance)
