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
from airflow_provider_amc.emulator.middleware import Gatekeeper, Receive, Scope, Send, is_admin
from airflow_provider_amc.emulator.responses import ApiError, error_response
from airflow_provider_amc.emulator.state import EmulatorState


class EmulatorApp(FastAPI):
    """FastAPI whose ``__call__`` first goes through the :class:`Gatekeeper`."""

    emulator: EmulatorState
    gatekeeper: Gatekeeper

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gatekeeper(scope, receive, send, super().__call__)


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.details, exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if is_admin(request.url.path) and exc.status_code != 404:
        return error_response(exc.status_code, str(exc.detail))
    if exc.status_code == 404:
        detail = exc.detail if is_admin(request.url.path) and exc.detail != "Not Found" else None
        return error_response(404, str(detail or f"Resource not found: {request.url.path}"))
    if exc.status_code == 405:
        return error_response(405, f"Method {request.method} is not allowed on {request.url.path}")
    return error_response(exc.status_code, str(exc.detail))


async def _unexpected(_: Request, exc: Exception) -> Response:
    return error_response(500, f"Internal emulator error: {type(exc).__name__}")


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
