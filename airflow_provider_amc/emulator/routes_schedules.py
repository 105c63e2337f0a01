"""``/amc/reporting/{instanceId}/schedules`` CRUD with enum validation (schedules never run)."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response

from airflow_provider_amc.emulator import validation
from airflow_provider_amc.emulator.api import instance_for, json_body, paged_list, state_of
from airflow_provider_amc.emulator.responses import (
    SCHEDULES_TYPE,
    ApiError,
    bad_request,
    vendor_json,
    wrap,
)
from airflow_provider_amc.emulator.state import Instance

router = APIRouter(prefix="/amc/reporting/{instance_id}/schedules")

PERIODS: Final = ("Daily", "Weekly")
WEEKDAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_BOOLEANS: Final = ("scheduleEnabled", "requireSyntheticData", "disableAggregationControls")


def _schedule(raw: Any, instance: Instance, weekday: str) -> dict[str, Any]:
    body = validation.json_object(raw)
    schedule_id = validation.workflow_id(body.get("scheduleId"), "scheduleId")
    wf_id = validation.workflow_id(body.get("workflowId"))
    if wf_id not in instance.workflows:
        raise bad_request(f"Workflow with ID {wf_id} does not exist.")
    period = body.get("aggregationPeriod")
    if period not in PERIODS:
        raise bad_request(f"Invalid aggregationPeriod '{period}'. Allowed values: {', '.join(PERIODS)}.")
    day = body.get("aggregationStartDay", weekday)
    if day not in WEEKDAYS:
        raise bad_request(f"Invalid aggregationStartDay '{day}'. Allowed values: {', '.join(WEEKDAYS)}.")
    hour = body.get("aggregationHourUtc", 0)
    if not isinstance(hour, int) or isinstance(hour, bool) or not 0 <= hour <= 23:
        raise bad_request(f"Invalid aggregationHourUtc '{hour}': expected an integer 0..23.")
    out: dict[str, Any] = {
        "scheduleId": schedule_id,
        "workflowId": wf_id,
        "aggregationPeriod": period,
        "aggregationStartDay": day,
        "aggregationHourUtc": hour,
    }
    for name in _BOOLEANS:
        out[name] = validation.flag(body, name, default=name == "scheduleEnabled")
    return out


def _existing(instance: Instance, schedule_id: str) -> dict[str, Any]:
    found = instance.schedules.get(schedule_id)
    if found is None:
        raise ApiError(404, f"Schedule with ID {schedule_id} does not exist.")
    return found


@router.get("")
async def list_schedules(request: Request, instance_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        schedules = list(instance_for(request, instance_id).schedules.values())
    return paged_list(request, "schedules", schedules, SCHEDULES_TYPE)


@router.post("")
async def create_schedule(request: Request, instance_id: str) -> Response:
    state = state_of(request)
    raw = await json_body(request)
    with state.lock:
        instance = instance_for(request, instance_id)
        schedule = _schedule(raw, instance, state.clock.now().strftime("%A"))
        if schedule["scheduleId"] in instance.schedules:
            raise bad_request(f"Schedule with ID {schedule['scheduleId']} already exists.")
        instance.schedules[schedule["scheduleId"]] = schedule
    return vendor_json({}, SCHEDULES_TYPE)


@router.get("/{schedule_id}")
async def get_schedule(request: Request, instance_id: str, schedule_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        found = _existing(instance_for(request, instance_id), schedule_id)
        body = wrap(dict(found), "schedule", state.config.envelope)
    return vendor_json(body, SCHEDULES_TYPE)


@router.put("/{schedule_id}")
async def update_schedule(request: Request, instance_id: str, schedule_id: str) -> Response:
    state = state_of(request)
    raw = await json_body(request)
    with state.lock:
        instance = instance_for(request, instance_id)
        current = _existing(instance, schedule_id)
        merged = {**current, **validation.json_object(raw), "scheduleId": schedule_id}
        instance.schedules[schedule_id] = _schedule(merged, instance, current["aggregationStartDay"])
    return vendor_json({}, SCHEDULES_TYPE)


@router.delete("/{schedule_id}")
async def delete_schedule(request: Request, instance_id: str, schedule_id: str) -> Response:
    state = state_of(request)
    with state.lock:
        instance = instance_for(request, instance_id)
        _existing(instance, schedule_id)
        del instance.schedules[schedule_id]
    return vendor_json({}, SCHEDULES_TYPE)
