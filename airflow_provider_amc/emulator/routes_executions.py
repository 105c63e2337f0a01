"""``/amc/reporting/{instanceId}/workflowExecutions`` (create, get, list, cancel, downloadUrls)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_provider_amc.emulator import execution_service as service
from airflow_provider_amc.emulator.api import instance_for, json_body, query_dict, state_of
from airflow_provider_amc.emulator.responses import EXECUTIONS_TYPE, ApiError, vendor_json, wrap

router = APIRouter(prefix="/amc/reporting/{instance_id}/workflowExecutions")


@router.get("")
async def list_executions(request: Request, instance_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        body = service.list_page(state, instance_for(request, instance_id), query_dict(request))
    return vendor_json(body, EXECUTIONS_TYPE)


@router.post("")
async def create_execution(request: Request, instance_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance_for(request, instance_id)
    raw = await json_body(request)
    with state.lock:
        execution = service.create(state, instance_for(request, instance_id), raw)
        body = wrap(execution.to_json(state.clock.now()), "workflowExecution", state.config.envelope)
    return vendor_json(body, EXECUTIONS_TYPE)


@router.get("/{execution_id}")
async def get_execution(request: Request, instance_id: str, execution_id: str) -> Response:
    state = state_of(request)
    include = request.query_params.get("includeWorkflow", "false").lower() == "true"
    with state.lock:
        execution = service.get(state, instance_for(request, instance_id), execution_id)
        found = execution.to_json(state.clock.now(), include_workflow=include)
        body = wrap(found, "workflowExecution", state.config.envelope)
    return vendor_json(body, EXECUTIONS_TYPE)


@router.put("/{execution_id}")
async def update_execution(request: Request, instance_id: str, execution_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance_for(request, instance_id)
    raw = await json_body(request)
    with state.lock:
        service.cancel(state, instance_for(request, instance_id), execution_id, raw)
    return vendor_json({}, EXECUTIONS_TYPE)


@router.delete("/{execution_id}")
async def delete_execution(request: Request, instance_id: str, execution_id: str) -> Response:
    """Legacy alias of cancel (§3.0 row 18), behind ``enable_delete_execution``."""
    state = state_of(request)
    with state.lock:
        if not state.config.enable_delete_execution:
            raise ApiError(404, f"Resource not found: {request.url.path}")
        service.cancel(state, instance_for(request, instance_id), execution_id, {"status": "CANCELLED"})
    return vendor_json({}, EXECUTIONS_TYPE)


@router.get("/{execution_id}/downloadUrls")
async def get_download_urls(request: Request, instance_id: str, execution_id: str) -> Response:
    state = state_of(request)
    base_url = str(request.base_url).rstrip("/")
    with state.lock:
        body = service.download_urls(state, instance_for(request, instance_id), execution_id, base_url)
    return vendor_json(body, EXECUTIONS_TYPE)
