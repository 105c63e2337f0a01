"""Admin API of the AMC emulator, under ``/emulator/`` (never logged, never throttled or faulted).

Routes (JSON in, JSON out; invalid input answers 422 naming the field):

- ``GET /emulator/health`` -- ``{"status": "ok"}``.
- ``POST /emulator/reset`` ``{"seed"?: int, "clear_tokens"?: bool}`` -- back to the seeded state
  (the clock keeps running; issued access tokens stay valid unless ``clear_tokens``).
- ``GET /emulator/requests?since=N`` -- the request log (entries with seq > N).
- ``DELETE /emulator/requests`` -- clear the request log.
- ``GET /emulator/clock`` -- ``{now, speed, offset_seconds}``.
- ``POST /emulator/clock/advance`` ``{"seconds": float >= 0}`` -- jump the clock forward.
- ``POST /emulator/clock/speed`` ``{"speed": float > 0}`` -- emulator-seconds per real second.
- ``GET /emulator/scripts`` -- all scripts by workflow id.
- ``PUT /emulator/scripts/{workflow_id}`` WorkflowScript fields -- script a workflow (``*`` = all).
- ``DELETE /emulator/scripts/{workflow_id}`` -- back to the default script.
- ``GET /emulator/faults`` -- pending fault rules.
- ``POST /emulator/faults`` FaultSpec fields -- add a fault rule.
- ``DELETE /emulator/faults`` -- remove all fault rules.
- ``PUT /emulator/throttle`` ``{"rate", "burst", "path"?}`` -- token-bucket throttle (429).
- ``DELETE /emulator/throttle`` -- no throttle.
- ``POST /emulator/tokens/expire`` ``{"status"?: 401|403}`` -- expire every access token now.
- ``GET /emulator/config`` / ``PUT /emulator/config`` (partial EmulatorConfig) -- switches.
- ``GET /emulator/executions/{instance_id}/{execution_id}`` -- execution plus emulator internals.
- ``GET /emulator/executions/{instance_id}/{execution_id}/result-summary`` -- expected rows,
  bytes, parts, per-part bytes and columns (computed by generating the files, never buffering).

WorkflowScript fields: ``pending_seconds`` (2), ``running_seconds`` (5), ``outcome``
(SUCCEEDED | FAILED | REJECTED | HANG), ``status_reason``, ``rows`` (default 5..50,
deterministic), ``parts`` (1..5), ``columns`` (subset/order of campaign, event_date,
impressions, spend, last_seen). A script is captured by an execution when it is created.

FaultSpec fields: ``kind`` (status | reset | delay | truncated_json | html), ``method`` ("*"),
``path`` (regex searched in the path, ".*"), ``count`` (next N matching calls, 1),
``status`` (429/500/502/503/504 for kind status; status of the malformed body otherwise),
``retry_after`` (seconds, for 429/503), ``delay_seconds`` (real seconds, for kind delay).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Body, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from airflow_provider_amc.emulator import execution_service
from airflow_provider_amc.emulator.api import state_of
from airflow_provider_amc.emulator.config import EmulatorConfig
from airflow_provider_amc.emulator.executions import Execution
from airflow_provider_amc.emulator.faults import FaultSpec, ThrottleSpec, TokenBucket
from airflow_provider_amc.emulator.scripts import WorkflowScript
from airflow_provider_amc.emulator.windows import utc_millis

router = APIRouter(prefix="/emulator")


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    seed: int | None = None
    clear_tokens: bool = False


class AdvanceRequest(BaseModel):
    seconds: float = Field(..., ge=0)


class SpeedRequest(BaseModel):
    speed: float = Field(..., gt=0)


class ExpireRequest(BaseModel):
    status: Literal[401, 403] | None = None


def _clock(request: Request) -> dict[str, Any]:
    clock = state_of(request).clock
    return {"now": utc_millis(clock.now()), "speed": clock.speed, "offset_seconds": clock.offset_seconds}


@router.get("/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@router.post("/reset")
async def reset(request: Request, body: ResetRequest | None = None) -> dict[str, Any]:
    options = body or ResetRequest()
    state_of(request).reset(options.seed, clear_tokens=options.clear_tokens)
    return {"status": "reset", "seed": state_of(request).fixed_seed}


@router.get("/requests")
async def requests_log(request: Request, since: int = 0) -> dict[str, Any]:
    return {"requests": state_of(request).log.since(since)}


@router.delete("/requests")
async def clear_requests(request: Request) -> dict[str, str]:
    state_of(request).log.clear()
    return {"status": "cleared"}


@router.get("/clock")
async def clock(request: Request) -> dict[str, Any]:
    return _clock(request)


@router.post("/clock/advance")
async def advance(request: Request, body: AdvanceRequest) -> dict[str, Any]:
    state_of(request).clock.advance(body.seconds)
    return _clock(request)


@router.post("/clock/speed")
async def speed(request: Request, body: SpeedRequest) -> dict[str, Any]:
    state = state_of(request)
    with state.lock:
        for instance in state.instances.values():
            state.settle(instance)  # replay history at the old speed first
        state.clock.set_speed(body.speed)
    return _clock(request)


@router.get("/scripts")
async def scripts(request: Request) -> dict[str, Any]:
    return {key: script.model_dump() for key, script in state_of(request).scripts.items()}


@router.put("/scripts/{workflow_id}")
async def put_script(request: Request, workflow_id: str, body: WorkflowScript) -> dict[str, Any]:
    state = state_of(request)
    with state.lock:
        state.scripts[workflow_id] = body
    return body.model_dump()


@router.delete("/scripts/{workflow_id}")
async def delete_script(request: Request, workflow_id: str) -> dict[str, str]:
    state = state_of(request)
    with state.lock:
        state.scripts.pop(workflow_id, None)
    return {"status": "deleted"}


@router.get("/faults")
async def faults(request: Request) -> dict[str, Any]:
    return {"faults": state_of(request).faults.pending()}


@router.post("/faults")
async def add_fault(request: Request, body: FaultSpec) -> dict[str, Any]:
    state_of(request).faults.add(body)
    return {"faults": state_of(request).faults.pending()}


@router.delete("/faults")
async def clear_faults(request: Request) -> dict[str, str]:
    state_of(request).faults.clear()
    return {"status": "cleared"}


@router.put("/throttle")
async def throttle(request: Request, body: ThrottleSpec) -> dict[str, Any]:
    state_of(request).throttle = TokenBucket(body)
    return body.model_dump()


@router.delete("/throttle")
async def no_throttle(request: Request) -> dict[str, str]:
    state_of(request).throttle = None
    return {"status": "off"}


@router.post("/tokens/expire")
async def expire_tokens(request: Request, body: ExpireRequest | None = None) -> dict[str, Any]:
    state = state_of(request)
    with state.lock:
        if body is not None and body.status is not None:
            state.config.expired_token_status = body.status
        expired = state.tokens.expire_all(state.clock.instant())
    return {"expired": expired, "status": state.config.expired_token_status}


@router.get("/config")
async def get_config(request: Request) -> dict[str, Any]:
    return state_of(request).config.model_dump()


@router.put("/config")
async def put_config(request: Request, patch: dict[str, Any] = Body(...)) -> dict[str, Any]:  # noqa: B008
    state = state_of(request)
    with state.lock:
        try:
            state.config = EmulatorConfig.model_validate({**state.config.model_dump(), **patch})
        except ValidationError as exc:
            raise HTTPException(422, detail=exc.errors(include_url=False, include_context=False)) from None
    return state.config.model_dump()


def _execution(request: Request, instance_id: str, execution_id: str) -> Execution:
    found = state_of(request).find_execution(instance_id, execution_id)
    if found is None:
        raise HTTPException(404, detail=f"No execution {execution_id} in instance {instance_id}.")
    return found


@router.get("/executions/{instance_id}/{execution_id}")
async def execution(request: Request, instance_id: str, execution_id: str) -> dict[str, Any]:
    state = state_of(request)
    with state.lock:
        found = _execution(request, instance_id, execution_id)
        return {
            "execution": found.to_json(state.clock.now(), include_workflow=True),
            "outputFormat": found.output_format,
            "dryRun": found.dry_run,
            "script": found.script.model_dump(),
        }


@router.get("/executions/{instance_id}/{execution_id}/result-summary")
async def result_summary(request: Request, instance_id: str, execution_id: str) -> dict[str, Any]:
    state = state_of(request)
    with state.lock:
        found = _execution(request, instance_id, execution_id)
        status = found.status
    summary = await asyncio.to_thread(found.result.summary)  # huge results take a while: off the loop
    return {"status": status, "metadata": execution_service.metadata(found), **summary}
