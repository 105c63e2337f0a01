"""Response helpers shared by the AMC routes: vendor media types, the ``{code, details}`` error."""

from __future__ import annotations

import json
from typing import Any, Final

from fastapi.responses import Response

WORKFLOWS_TYPE: Final = "application/vnd.amcworkflows.v1+json"
EXECUTIONS_TYPE: Final = "application/vnd.amcworkflowexecutions.v1+json"
SCHEDULES_TYPE: Final = "application/vnd.amcschedules.v1+json"
DATASOURCES_TYPE: Final = "application/vnd.amcdatasources.v1+json"
JSON_TYPE: Final = "application/json"

ACCEPTED_REQUEST_TYPES: Final = frozenset(
    {JSON_TYPE, WORKFLOWS_TYPE, EXECUTIONS_TYPE, SCHEDULES_TYPE, DATASOURCES_TYPE}
)


class ApiError(Exception):
    """An AMC-style error answer: ``{"code": "<status>", "details": "<text>"}``."""

    def __init__(self, status: int, details: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(details)
        self.status = status
        self.details = details
        self.headers = headers or {}


def bad_request(details: str) -> ApiError:
    return ApiError(400, details)


def error_response(status: int, details: str, headers: dict[str, str] | None = None) -> Response:
    body = json.dumps({"code": str(status), "details": details})
    return Response(body, status_code=status, media_type=JSON_TYPE, headers=headers)


def vendor_json(payload: Any, media_type: str, status: int = 200) -> Response:
    """Serialise ``payload`` compactly with the given (vendor) media type."""
    return Response(json.dumps(payload, separators=(",", ":")), status_code=status, media_type=media_type)


def wrap(obj: dict[str, Any], key: str, envelope: bool) -> dict[str, Any]:
    """Flat like production, or the spec's ``{key: obj}`` envelope when configured."""
    return {key: obj} if envelope else obj


def list_envelope(key: str, page: list[Any], next_token: str | None) -> dict[str, object]:
    """A list response: ``{key: [...]}`` plus ``nextToken`` only when more pages exist."""
    body: dict[str, object] = {key: page}
    if next_token:
        body["nextToken"] = next_token
    return body
