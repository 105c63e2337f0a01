"""Login with Amazon (LwA) access tokens: the refresh-token grant and a process-wide token cache.

The cache is keyed by (token endpoint, client id, SHA-256 of the refresh token and the client
secret), so every client and hook in the process that uses the same credentials shares one access
token. Fetching is
single-flight: with threads, one ``threading.Lock`` per key; with asyncio, one ``asyncio.Lock``
per key and event loop (a threading lock is never held across an ``await``). A token is refreshed
``REFRESH_MARGIN`` seconds before it expires, and dropped when AMC refuses it (``invalidate``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from airflow_provider_amc.client.errors import AmcAuthError
from airflow_provider_amc.client.protocol import CallContext, Flow, Kind, Operation, call_json
from airflow_provider_amc.client.settings import AmcSettings

#: Refresh this many seconds before the token's expiry (LwA tokens live 3600 s).
REFRESH_MARGIN: Final = 300.0
DEFAULT_EXPIRES_IN: Final = 3600.0

TokenKey = tuple[str, str, str]


@dataclass(frozen=True)
class AccessToken:
    value: str
    expires_at: float

    def __repr__(self) -> str:
        return f"AccessToken(<hidden>, expires_at={self.expires_at:.0f})"


def token_key(settings: AmcSettings) -> TokenKey:
    """Cache key: the refresh token and the client secret only appear hashed (a token fetched with
    the right secret must not serve a connection holding a wrong one)."""
    secrets = (settings.refresh_token.get_secret_value(), settings.client_secret.get_secret_value())
    digest = hashlib.sha256("\n".join(secrets).encode()).hexdigest()
    return settings.token_endpoint, settings.client_id, digest


def token_operation(settings: AmcSettings) -> Operation:
    """The form-encoded refresh-token grant (amc-api.md §1.3). Safe to repeat."""
    return Operation(
        method="POST",
        url=settings.token_endpoint,
        form_body={
            "grant_type": "refresh_token",
            "refresh_token": settings.refresh_token.get_secret_value(),
            "client_id": settings.client_id,
            "client_secret": settings.client_secret.get_secret_value(),
        },
        kind=Kind.TOKEN,
    )


def parse_token(body: Any) -> tuple[str, float]:
    """(access token, lifetime in seconds) from an LwA answer."""
    if not isinstance(body, dict) or not isinstance(body.get("access_token"), str):
        # Not even the keys are quoted: an echoing endpoint may use a secret as a key.
        raise AmcAuthError("Login with Amazon answered without an access_token")
    try:
        expires_in = float(body.get("expires_in", DEFAULT_EXPIRES_IN))
    except (TypeError, ValueError):
        expires_in = DEFAULT_EXPIRES_IN
    return body["access_token"], expires_in


def token_flow(ctx: CallContext) -> Flow[tuple[str, float]]:
    """Fetch a new access token (with the usual retries on 429/5xx/connection errors)."""
    body = yield from call_json(ctx, token_operation(ctx.settings))
    return parse_token(body)


Fetch = Callable[[], tuple[str, float]]
AsyncFetch = Callable[[], Awaitable[tuple[str, float]]]


class TokenCache:
    """Access tokens shared by every client of the process (see the module docstring)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, margin: float = REFRESH_MARGIN) -> None:
        self._clock = clock
        self._margin = margin
        self._tokens: dict[TokenKey, AccessToken] = {}
        self._guard = threading.Lock()  # protects the dicts only; never held while fetching
        self._thread_locks: dict[TokenKey, threading.Lock] = {}
        self._loop_locks: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[TokenKey, asyncio.Lock]
        ] = weakref.WeakKeyDictionary()

    def peek(self, key: TokenKey) -> str | None:
        """The cached token when it is still fresh (not within the refresh margin of expiry)."""
        with self._guard:
            token = self._tokens.get(key)
        if token is not None and self._clock() < token.expires_at - self._margin:
            return token.value
        return None

    def invalidate(self, key: TokenKey, token: str) -> None:
        """Forget ``token`` (AMC refused it) unless another caller already replaced it."""
        with self._guard:
            current = self._tokens.get(key)
            if current is not None and current.value == token:
                del self._tokens[key]

    def clear(self) -> None:
        with self._guard:
            self._tokens.clear()

    def _store(self, key: TokenKey, value: str, expires_in: float) -> str:
        with self._guard:
            self._tokens[key] = AccessToken(value, self._clock() + expires_in)
        return value

    def _thread_lock(self, key: TokenKey) -> threading.Lock:
        with self._guard:
            return self._thread_locks.setdefault(key, threading.Lock())

    def _loop_lock(self, key: TokenKey) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._guard:
            return self._loop_locks.setdefault(loop, {}).setdefault(key, asyncio.Lock())

    def get(self, key: TokenKey, fetch: Fetch) -> str:
        """A fresh token for ``key``; at most one thread fetches at a time."""
        token = self.peek(key)
        if token is not None:
            return token
        with self._thread_lock(key):
            token = self.peek(key)
            return token if token is not None else self._store(key, *fetch())

    async def aget(self, key: TokenKey, fetch: AsyncFetch) -> str:
        """A fresh token for ``key``; at most one coroutine per event loop fetches at a time."""
        token = self.peek(key)
        if token is not None:
            return token
        async with self._loop_lock(key):
            token = self.peek(key)
            return token if token is not None else self._store(key, *(await fetch()))


#: The process-wide cache used by default by every client.
TOKEN_CACHE: Final = TokenCache()
