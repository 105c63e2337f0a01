"""Pre-signed-style result downloads (no Authorization header, like S3)."""

from __future__ import annotations

import json
import re
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from airflow_provider_amc.emulator import execution_service as service
from airflow_provider_amc.emulator.api import state_of
from airflow_provider_amc.emulator.executions import Execution
from airflow_provider_amc.emulator.signing import UrlRejected, s3_error_xml

router = APIRouter()
PART_RE: Final = re.compile(r"^part-(\d{5})\.(csv|parquet)$")
MEDIA: Final = {"csv": "text/csv", "parquet": "application/octet-stream"}


def _s3_error(status: int, error: UrlRejected, request_id: str) -> Response:
    return Response(s3_error_xml(error, request_id), status_code=status, media_type="application/xml")


def _no_such_key(request_id: str) -> Response:
    return _s3_error(404, UrlRejected("NoSuchKey", "The specified key does not exist."), request_id)


@router.get("/downloads/{instance_id}/{execution_id}/{name}")
async def download(request: Request, instance_id: str, execution_id: str, name: str) -> Response:
    state = state_of(request)
    with state.lock:
        try:
            state.signer.verify(request.url.path, dict(request.query_params), state.lifetime_now())
        except UrlRejected as exc:
            return _s3_error(403, exc, state.request_id())
        execution: Execution | None = state.find_execution(instance_id, execution_id)
    if execution is None or not execution.has_output:
        return _no_such_key(state.request_id())
    if name == "metadata.json":
        return Response(json.dumps(service.metadata(execution), indent=2), media_type="application/json")
    match = PART_RE.match(name)
    result = execution.result
    if match is None or match.group(2) != result.extension or int(match.group(1)) >= result.part_count:
        return _no_such_key(state.request_id())
    return StreamingResponse(result.iter_part(int(match.group(1))), media_type=MEDIA[result.extension])
