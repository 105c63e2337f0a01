"""Helpers shared by the AMC route modules: request context (auth + instance) and JSON bodies."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from airflow_provider_amc.emulator.auth import authenticate
from airflow_provider_amc.emulator.responses import ApiError, bad_request, list_envelope, vendor_json
from airflow_provider_amc.emulator.state import EmulatorState, Instance, paginate


def state_of(request: Request) -> EmulatorState:
    state: EmulatorState = request.app.state.emulator
    return state


def lower_headers(request: Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


def authorize(request: Request, *, require_account: bool = True) -> tuple[str, str]:
    """Run the bearer/header checks of §9.2; return ``(advertiser_id, marketplace_id)``."""
    state = state_of(request)
    return authenticate(
        state.tokens,
        lower_headers(request),
        state.clock.instant(),
        failure_status=state.config.expired_token_status,
        scaled_lifetimes=state.config.scaled_lifetimes,
        require_account=require_account,
    )


def instance_for(request: Request, instance_id: str) -> Instance:
    """Authenticate, then resolve the instance and check it belongs to the caller's account.

    Call with ``state.lock`` held.
    """
    advertiser_id, marketplace_id = authorize(request)
    return state_of(request).instance(instance_id, advertiser_id, marketplace_id)


async def json_body(request: Request) -> Any:
    """The request's JSON body; JSON, vendor ``+json`` or no Content-Type are accepted."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type and "json" not in content_type:
        raise ApiError(415, f"Unsupported Content-Type '{content_type}': send application/json.")
    raw = await request.body()
    if not raw.strip():
        raise bad_request("A JSON request body is required.")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None


def query_dict(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def paged_list(
    request: Request, key: str, items: list[Any], media_type: str, *, honour_limit: bool = True
) -> Response:
    """One page of ``items`` in AMC's list envelope (``limit`` and ``nextToken`` from the query)."""
    query = query_dict(request)
    limit = query.get("limit") if honour_limit else None
    page, token = paginate(items, limit, query.get("nextToken"))
    return vendor_json(list_envelope(key, page, token), media_type)
