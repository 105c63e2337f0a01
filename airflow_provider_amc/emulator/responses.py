"""Response helpers shared by the AMC routes: vendor media types, the ``{code, details}`` error."""

from __future__ import annotations

import json
import re
from typing import Any, Final

from fastapi.responses import Response

WORKFLOWS_TYPE: Final = "application/vnd.amcworkflows.v1+json"
EXECUTIONS_TYPE: Final = "application/vnd.amcworkflowexecutions.v1+json"
SCHEDULES_TYPE: Final = "application/vnd.amcschedules.v1+json"
DATASOURCES_TYPE: Final = "application/vnd.amcdatasources.v1+json"
INSTANCES_TYPE: Final = "application/vnd.amcinstances.v1+json"
ACCOUNTS_TYPE: Final = "application/vnd.amcaudiencesconnections.v1+json"
JSON_TYPE: Final = "application/json"

#: The media type each resource family declares for its answers, success and error alike (spec).
_FAMILY_TYPES: Final = {
    "workflows": WORKFLOWS_TYPE,
    "workflowExecutions": EXECUTIONS_TYPE,
    "schedules": SCHEDULES_TYPE,
    "dataSources": DATASOURCES_TYPE,
}
_REPORTING_RE: Final = re.compile(r"^/amc/reporting/[^/]+/(?P<family>[A-Za-z]+)(?:/|$)")

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


def media_type_for(path: str) -> str:
    """The vendor media type the spec declares for answers on ``path`` (``application/json`` when
    the path belongs to no AMC operation: the token endpoint, unknown paths, the admin API)."""
    if path == "/amc/accounts":
        return ACCOUNTS_TYPE
    if path == "/amc/instances" or path.startswith("/amc/instances/"):
        return INSTANCES_TYPE
    match = _REPORTING_RE.match(path)
    family = _FAMILY_TYPES.get(match.group("family")) if match else None
    return family or JSON_TYPE


def error_body(status: int, details: str, path: str = "", request_id: str = "") -> bytes:
    """The error object the spec declares for ``path``: ``{code, details}`` (``Error``), except
    ``/amc/accounts`` whose errors are ``{message, requestId}`` (AmcpLink*ExceptionResponseContent)."""
    if path == "/amc/accounts":
        return json.dumps({"message": details, "requestId": request_id}).encode()
    return json.dumps({"code": str(status), "details": details}).encode()


def error_response(
    status: int,
    details: str,
    headers: dict[str, str] | None = None,
    *,
    path: str = "",
    request_id: str = "",
) -> Response:
    """An error answer on ``path`` with the body and media type the spec declares for it."""
    body = error_body(status, details, path, request_id)
    return Response(body, status_code=status, media_type=media_type_for(path), headers=headers)


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
