"""``/amc/reporting/{instanceId}/workflows`` (saved workflow CRUD)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from airflow_provider_amc.emulator import validation
from airflow_provider_amc.emulator.api import instance_for, json_body, paged_list, state_of
from airflow_provider_amc.emulator.responses import (
    WORKFLOWS_TYPE,
    ApiError,
    bad_request,
    vendor_json,
    wrap,
)
from airflow_provider_amc.emulator.state import Instance

router = APIRouter(prefix="/amc/reporting/{instance_id}/workflows")


def _existing(instance: Instance, workflow_id: str) -> dict[str, object]:
    found = instance.workflows.get(workflow_id)
    if found is None:
        raise ApiError(404, f"Workflow with ID {workflow_id} does not exist.")
    return found


@router.get("")
async def list_workflows(request: Request, instance_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        workflows = list(instance_for(request, instance_id).workflows.values())
    return paged_list(request, "workflows", workflows, WORKFLOWS_TYPE)


@router.post("")
async def create_workflow(request: Request, instance_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance_for(request, instance_id)
    definition = validation.workflow_definition(await json_body(request))
    with state.lock:
        instance = instance_for(request, instance_id)
        wf_id = definition["workflowId"]
        if wf_id in instance.workflows:
            raise bad_request(f"Workflow with ID {wf_id} already exists.")
        instance.workflows[wf_id] = definition
    return Response(b"{}", media_type="application/octet-stream")


@router.get("/{workflow_id}")
async def get_workflow(request: Request, instance_id: str, workflow_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance = instance_for(request, instance_id)
        found = dict(_existing(instance, workflow_id))
        envelope = state.config.envelope
    return vendor_json(wrap(found, "workflow", envelope), WORKFLOWS_TYPE)


@router.put("/{workflow_id}")
async def update_workflow(request: Request, instance_id: str, workflow_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance_for(request, instance_id)
    definition = validation.workflow_definition(await json_body(request))
    if definition["workflowId"] != workflow_id:
        raise bad_request(f"workflowId '{definition['workflowId']}' in the body must match '{workflow_id}'.")
    with state.lock:
        instance = instance_for(request, instance_id)
        _existing(instance, workflow_id)
        instance.workflows[workflow_id] = definition
    return vendor_json({}, WORKFLOWS_TYPE)


@router.delete("/{workflow_id}")
async def delete_workflow(request: Request, instance_id: str, workflow_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance = instance_for(request, instance_id)
        _existing(instance, workflow_id)
        users = sorted(s["scheduleId"] for s in instance.schedules.values() if s["workflowId"] == workflow_id)
        if users:
            raise bad_request(
                f"Workflow with ID {workflow_id} is referenced by schedule(s) {', '.join(users)}."
            )
        del instance.workflows[workflow_id]
    return vendor_json({}, WORKFLOWS_TYPE)
