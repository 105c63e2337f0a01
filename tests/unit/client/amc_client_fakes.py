"""Shared constants and fakes for the client unit tests (imported by conftest and the tests)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from airflow_provider_amc.client import AmcSettings

CLIENT_ID = "amzn1.application-oa2-client.unit"
CLIENT_SECRET = "client-secret-DO-NOT-LOG-1234"
REFRESH_TOKEN = "Atzr|refresh-token-DO-NOT-LOG-5678"
ACCESS_TOKEN = "Atza|access-token-DO-NOT-LOG"
ADVERTISER_ID = "ENTITYUNIT0001"
MARKETPLACE_ID = "ATVPDKIKX0DER"
INSTANCE_ID = "amcunit0001"
SECRETS = (CLIENT_SECRET, REFRESH_TOKEN, ACCESS_TOKEN)
API = "https://advertising-api.amazon.com"
TOKEN_URL = "https://api.amazon.com/auth/o2/token"
REPORTING = f"{API}/amc/reporting/{INSTANCE_ID}"


def make_settings(**overrides: Any) -> AmcSettings:
    values: dict[str, Any] = {
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "advertiser_id": ADVERTISER_ID,
        "marketplace_id": MARKETPLACE_ID,
        "instance_id": INSTANCE_ID,
        "max_attempts": 4,
        "backoff_base": 1.0,
        "backoff_max": 3.0,
        "timeout": 5.0,
    }
    values.update(overrides)
    return AmcSettings(**values)


def execution_json(execution_id: str = "e-1", status: str = "PENDING", **extra: Any) -> dict[str, Any]:
    return {"workflowExecutionId": execution_id, "workflowId": "wf", "status": status, **extra}


# ---- a scripted server for the async client -------------------------------------------------
@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list -> JSON; bytes/str -> raw
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class FakeAmc:
    """Routes answer scripted replies in order (the last one repeats); the LwA token endpoint
    issues ``Atza|token-<n>``. Every request is recorded."""

    routes: dict[tuple[str, str], list[Reply]] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    token_delay: float = 0.0
    url: str = ""

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.routes[(method, path)] = list(replies)

    def calls(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    @property
    def token_requests(self) -> list[Recorded]:
        return self.calls("POST", "/auth/o2/token")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        if request.path == "/auth/o2/token":
            await asyncio.sleep(self.token_delay)
            n = len(self.token_requests)
            return web.json_response({"access_token": f"Atza|token-{n}", "expires_in": 3600})
        replies = self.routes.get((request.method, request.path))
        if not replies:
            return web.json_response({"code": "404", "details": "no route"}, status=404)
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        if reply.delay:
            await asyncio.sleep(reply.delay)
        raw = reply.body
        if isinstance(raw, dict | list) or raw is None:
            raw = json.dumps({} if raw is None else raw).encode()
        elif isinstance(raw, str):
            raw = raw.encode()
        return web.Response(status=reply.status, body=raw, headers=reply.headers)


def fake_settings(fake: FakeAmc, **overrides: Any) -> AmcSettings:
    return make_settings(**({"host": fake.url, "token_url": f"{fake.url}/auth/o2/token"} | overrides))
