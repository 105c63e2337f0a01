"""Login-with-Amazon ``POST /auth/o2/token`` (form-encoded refresh-token grant)."""

from __future__ import annotations

from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response

from airflow_provider_amc.emulator.api import state_of
from airflow_provider_amc.emulator.auth import LwaError
from airflow_provider_amc.emulator.responses import vendor_json

router = APIRouter()
JSON_UTF8 = "application/json;charset=UTF-8"


@router.post("/auth/o2/token")
async def token(request: Request) -> Response:
    state = state_of(request)
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
    try:
        with state.lock:
            body = state.tokens.grant(form, state.clock.instant())
    except LwaError as exc:
        return vendor_json({"error": exc.error, "error_description": exc.description}, JSON_UTF8, exc.status)
    return vendor_json(body, JSON_UTF8)
