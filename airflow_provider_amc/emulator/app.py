"""The FastAPI application: AMC Reporting, LwA, downloads and the admin API on one base URL."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from airflow_provider_amc.emulator import (
    admin,
    routes_catalog,
    routes_downloads,
    routes_executions,
    routes_lwa,
    routes_schedules,
    routes_workflows,
)
from airflow_provider_amc.emulator.middleware import (
    Gatekeeper,
    Receive,
    Scope,
    Send,
    is_admin,
    request_id_of,
)
from airflow_provider_amc.emulator.responses import ApiError, error_response
from airflow_provider_amc.emulator.state import EmulatorState


class EmulatorApp(FastAPI):
    """FastAPI whose ``__call__`` first goes through the :class:`Gatekeeper`."""

    emulator: EmulatorState
    gatekeeper: Gatekeeper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gatekeeper(scope, receive, send, super().__call__)


def _error(request: Request, status: int, details: str, headers: dict[str, str] | None = None) -> Response:
    """An error answer shaped for the request's path (the operation's media type and error object)."""
    path = request.url.path
    return error_response(status, details, headers, path=path, request_id=request_id_of(request.scope))


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _error(request, exc.status, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    path = request.url.path
    if is_admin(path) and exc.status_code != 404:
        return _error(request, exc.status_code, str(exc.detail))
    if exc.status_code == 404:
        detail = exc.detail if is_admin(path) and exc.detail != "Not Found" else None
        return _error(request, 404, str(detail or f"Resource not found: {path}"))
    if exc.status_code == 405:
        return _error(request, 405, f"Method {request.method} is not allowed on {path}")
    return _error(request, exc.status_code, str(exc.detail))


async def _unexpected(request: Request, exc: Exception) -> Response:
    return _error(request, 500, f"Internal emulator error: {type(exc).__name__}")


def create_app(state: EmulatorState | None = None) -> FastAPI:
    """Build the emulator app around ``state`` (a fresh seeded state by default)."""
    app = EmulatorApp(
        title="AMC emulator",
        docs_url="/emulator/docs",
        redoc_url=None,
        openapi_url="/emulator/openapi.json",
        swagger_ui_oauth2_redirect_url=None,
    )
    app.emulator = state or EmulatorState()
    app.state.emulator = app.emulator
    app.gatekeeper = Gatekeeper(app.emulator)
    handlers: dict[Any, Any] = {
        ApiError: _api_error,
        StarletteHTTPException: _http_error,
        Exception: _unexpected,
    }
    for exc_type, handler in handlers.items():
        app.add_exception_handler(exc_type, handler)
    for module in (
        routes_lwa,
        routes_catalog,
        routes_workflows,
        routes_executions,
        routes_schedules,
        routes_downloads,
        admin,
    ):
        app.include_router(module.router)
    return app
