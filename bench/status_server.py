"""A minimal keep-alive HTTP/1.1 server answering AMC status polls for the triggerer benchmark.

The emulator is a full FastAPI app: with thousands of triggers polling it on the same 2 cores it
becomes the bottleneck and the benchmark measures queueing instead of the triggers. This server
replays answers captured from the emulator (``bench_triggerer.py`` records them first), so the
client parses exactly what the emulator sends, at a fraction of the CPU:

* ``POST /auth/o2/token``: the recorded LwA token answer (one token);
* ``GET …/workflowExecutions/{id}``: the recorded RUNNING execution with ``{id}`` put in place
  (the client checks that the answer is about the execution it asked for); ids starting with
  ``MISSING_PREFIX`` get the recorded 404 answer (what keeps ``HttpSensorTrigger`` polling);
* ``GET /__bench/counts[?reset=1]``: the requests answered per kind, as JSON (then reset).

Anything else is answered 400 and counted as ``other``. Usage::

    python bench/status_server.py ANSWERS.json     # prints "status server listening on http://…"

``ANSWERS.json``: ``{"token": A, "execution": A, "missing": A, "execution_id": "<id in the body>"}``
with ``A = {"status": int, "content_type": str, "body": str}``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

MISSING_PREFIX = "00000000-0000-4000-8000-"
EXECUTIONS = b"/workflowExecutions/"
_REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found"}


def response(status: int, content_type: str, body: bytes) -> bytes:
    head = f"HTTP/1.1 {status} {_REASONS[status].decode()}\r\nContent-Type: {content_type}\r\n"
    return head.encode() + f"Content-Length: {len(body)}\r\n\r\n".encode() + body


class Answers:
    """The recorded answers, ready to send."""

    def __init__(self, recorded: dict[str, Any]) -> None:
        def encoded(name: str) -> tuple[int, str, bytes]:
            answer = recorded[name]
            return answer["status"], answer["content_type"], answer["body"].encode()

        self.token = response(*encoded("token"))
        self.missing = response(*encoded("missing"))
        status, content_type, body = encoded("execution")
        before, _, after = body.partition(recorded["execution_id"].encode())
        if not after:
            raise ValueError("the recorded execution body does not contain its execution id")
        self._execution = (status, content_type, before, after)
        self.bad = response(400, "text/plain", b"not served by the bench status server")
        self.counts: Counter[str] = Counter()

    def execution(self, execution_id: bytes) -> bytes:
        status, content_type, before, after = self._execution
        return response(status, content_type, before + execution_id + after)

    def answer(self, method: bytes, target: bytes) -> bytes:
        path, _, query = target.partition(b"?")
        if method == b"GET" and EXECUTIONS in path:
            execution_id = path.rsplit(b"/", 1)[1]
            if execution_id.startswith(MISSING_PREFIX.encode()):
                self.counts["missing"] += 1
                return self.missing
            self.counts["status"] += 1
            return self.execution(execution_id)
        if method == b"POST" and path == b"/auth/o2/token":
            self.counts["token"] += 1
            return self.token
        if method == b"GET" and path == b"/__bench/counts":
            counts = dict(self.counts)
            if query == b"reset=1":
                self.counts.clear()
            return response(200, "application/json", json.dumps(counts).encode())
        self.counts["other"] += 1
        return self.bad


class Connection(asyncio.Protocol):
    """One client connection: requests answered in order, kept alive until the client closes."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # a stream transport (uvloop's too)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end]
            length = 0
            lowered = head.lower()
            if (at := lowered.find(b"\r\ncontent-length:")) >= 0:
                line_end = lowered.find(b"\r\n", at + 2)
                length = int(lowered[at + 17 : line_end if line_end >= 0 else None])
            if len(self.buffer) < end + 4 + length:
                return  # the body is still coming
            self.buffer = self.buffer[end + 4 + length :]
            method, target, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            assert self.transport is not None
            self.transport.write(self.answers.answer(method, target))


async def serve(answers: Answers) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Connection(answers), "127.0.0.1", 0, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(f"status server listening on http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


def main(path: Path) -> None:
    answers = Answers(json.loads(path.read_text()))
    try:
        import uvloop  # the cheapest loop available: this server's CPU is not what is measured
    except ImportError:
        asyncio.run(serve(answers))
    else:
        uvloop.run(serve(answers))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
