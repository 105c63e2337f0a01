"""Outermost request handling: request ids, throttle, fault injection and the request log.

It runs *outside* Starlette's middleware stack (see :class:`EmulatorApp` in ``app.py``) so that
it sees uvicorn's own ``send`` and can drop a connection without any response.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import parse_qsl

from airflow_provider_amc.emulator.faults import FaultSpec
from airflow_provider_amc.emulator.requestlog import header_summary, scrub
from airflow_provider_amc.emulator.responses import error_body, media_type_for
from airflow_provider_amc.emulator.state import EmulatorState
from airflow_provider_amc.emulator.windows import utc_millis

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Downstream = Callable[[Scope, Receive, Send], Awaitable[None]]

ADMIN_PREFIX: Final = "/emulator"
TRUNCATED_JSON: Final = b'{"workflowExecutionId": "3f1c2a9e-0000-4000-8000-00000000'
HTML_PAGE: Final = (
    b"<html><head><title>{status} Bad Gateway</title></head><body>"
    b"<h1>{status} Bad Gateway</h1><p>The server returned an invalid response.</p></body></html>"
)


REQUEST_ID_KEY: Final = "amc_emulator.request_id"


def is_admin(path: str) -> bool:
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def request_id_of(scope: Scope) -> str:
    """The ``x-amz-request-id`` the :class:`Gatekeeper` gave this request ("" outside it)."""
    return str(scope.get(REQUEST_ID_KEY, ""))


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _logged_body(body: bytes, content_type: str) -> Any:
    if not body:
        return None
    if "x-www-form-urlencoded" in content_type:
        return scrub(dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
    try:
        return scrub(json.loads(body))
    except ValueError:
        return {"unparsed_bytes": len(body)}


async def _respond(send: Send, status: int, body: bytes, content_type: str, extra: dict[str, str]) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def _error(send: Send, scope: Scope, status: int, details: str, extra: dict[str, str]) -> None:
    """An API error answer with the error object and media type the spec declares for the path."""
    path = scope["path"]
    body = error_body(status, details, path, request_id_of(scope))
    await _respond(send, status, body, media_type_for(path), extra)


async def _drop_connection(send: Send) -> None:
    """Reset the TCP connection (SO_LINGER 0 + abort) without writing a response."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionResetError("emulator fault: connection reset")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    for _ in range(3):  # let uvicorn notice the disconnect so it does not try to answer
        await asyncio.sleep(0)


async def _apply_fault(fault: FaultSpec, scope: Scope, send: Send, raw_send: Send) -> int | None:
    """Answer per the fault; return the status sent (``None`` for a dropped connection).

    ``raw_send`` is uvicorn's own ``send`` (a bound method of the connection's request cycle),
    needed to reach the transport for a reset.
    """
    if fault.kind == "reset":
        await _drop_connection(raw_send)
        return None
    status = fault.status or 500
    if fault.kind == "truncated_json":
        await _respond(send, status, TRUNCATED_JSON, "application/json", {})
    elif fault.kind == "html":
        page = HTML_PAGE.replace(b"{status}", str(status).encode())
        await _respond(send, status, page, "text/html", {})
    else:
        details = {429: "Too Many Requests", 503: "Service Unavailable"}.get(status, "Internal Server Error")
        extra = {"Retry-After": str(fault.retry_after)} if status in (429, 503) else {}
        await _error(send, scope, status, details, extra)
    return status


class Gatekeeper:
    """Wraps every HTTP request to the emulator app."""

    def __init__(self, state: EmulatorState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send, downstream: Downstream) -> None:
        if scope["type"] != "http":
            await downstream(scope, receive, send)
            return
        rid = self.state.request_id().encode()
        scope[REQUEST_ID_KEY] = rid.decode()
        status: list[int | None] = [None]

        async def send_with_ids(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message = {
                    **message,
                    "headers": [*message.get("headers", []), (b"x-amz-rid", rid), (b"x-amz-request-id", rid)],
                }
            await send(message)

        path, method = scope["path"], scope["method"]
        if is_admin(path):
            await downstream(scope, receive, send_with_ids)
            return
        body = await _read_body(receive)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        names, values = header_summary(headers)
        entry: dict[str, Any] = {
            "time": utc_millis(self.state.clock.now()),
            "method": method,
            "path": path,
            "query": dict(
                parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
            ),
            "headers": names,
            "header_values": values,
            "body": _logged_body(body, headers.get("content-type", ""))
            if method in ("POST", "PUT")
            else None,
        }
        try:
            await self._dispatch(scope, _replay(body, receive), send_with_ids, send, downstream, entry)
        finally:
            entry["status"] = status[0]
            self.state.log.record(entry)

    async def _dispatch(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        raw_send: Send,
        downstream: Downstream,
        entry: dict[str, Any],
    ) -> None:
        throttle = self.state.throttle
        retry_after = throttle.admit(scope["path"]) if throttle is not None else None
        if retry_after is not None:
            entry["throttled"] = True
            await _error(send, scope, 429, "Too Many Requests", {"Retry-After": str(retry_after)})
            return
        fault = self.state.faults.take(scope["method"], scope["path"])
        if fault is not None:
            entry["fault"] = fault.kind
            if fault.kind == "delay":
                await asyncio.sleep(fault.delay_seconds)
            else:
                await _apply_fault(fault, scope, send, raw_send)
                return
        await downstream(scope, receive, send)
