"""``AsyncAmcClient``: the asyncio AMC client, a thin driver over the shared flows (aiohttp)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any, Self, TypeVar

import aiohttp

from airflow_provider_amc.client.auth import TokenCache
from airflow_provider_amc.client.errors import AmcConfigError, AmcTransportError
from airflow_provider_amc.client.operations import AmcOperations, AsyncRunner, download_flow
from airflow_provider_amc.client.protocol import (
    Action,
    Flow,
    HttpRequest,
    HttpResponse,
    Send,
    Sleep,
    TransportFailure,
    deadline_message,
    full_jitter,
    without_query,
)
from airflow_provider_amc.client.settings import AmcSettings
from airflow_provider_amc.client.transport import proxy_route

T = TypeVar("T")


#: A shared session and how many clients use it.
_SessionUse = tuple[aiohttp.ClientSession, int]


class SharedSessions:
    """One ``aiohttp.ClientSession`` per event loop, shared by the clients running in that loop.

    In the triggerer hundreds of triggers poll at once; sharing the session (and its connection
    pool) keeps the number of open connections bounded instead of one per trigger. The session is
    closed when the last client using it closes.
    """

    def __init__(self, limit: int = 100) -> None:
        self.limit = limit
        self._sessions: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[aiohttp.ClientSession, int]
        ]
        self._sessions = weakref.WeakKeyDictionary()

    def acquire(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session, users = self._sessions.get(loop, (None, 0))
        if session is None or session.closed:
            session, users = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=self.limit)), 0
        self._sessions[loop] = (session, users + 1)
        return session

    async def release(self, session: aiohttp.ClientSession) -> None:
        loop = asyncio.get_running_loop()
        current, users = self._sessions.get(loop, (None, 0))
        if current is not session:
            return
        if users <= 1:
            del self._sessions[loop]
            await session.close()
        else:
            self._sessions[loop] = (session, users - 1)


SHARED_SESSIONS = SharedSessions()

#: Failures that happen before the request is written: it cannot have reached AMC.
_NOT_SENT: tuple[type[BaseException], ...] = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


class AsyncAmcClient(AmcOperations, AsyncRunner):
    """Asynchronous AMC client. It uses the event loop's shared ``aiohttp.ClientSession``
    (:class:`SharedSessions`), taken lazily inside the running loop; use ``async with`` or
    ``await client.aclose()``. Pass ``session=`` to use your own
    (it is then not closed by the client) and ``sleep=``/``jitter=``/``token_cache=`` in tests.
    """

    def __init__(
        self,
        settings: AmcSettings,
        *,
        session: aiohttp.ClientSession | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        token_cache: TokenCache | None = None,
        jitter: Callable[[float], float] = full_jitter,
        on_new_token: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(settings, token_cache=token_cache, jitter=jitter, on_new_token=on_new_token)
        self._owns_session = session is None
        self._session = session
        self._sleep = sleep

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release the HTTP session (the shared one closes when its last client releases it)."""
        if self._owns_session and self._session is not None:
            session, self._session = self._session, None
            await SHARED_SESSIONS.release(session)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = SHARED_SESSIONS.acquire()
            self._owns_session = True
        return self._session

    # ---- the driver ---------------------------------------------------------------------------
    async def _run(self, flow: Flow[T]) -> T:
        result: Any = None
        try:
            while True:
                result = await self._perform(flow.send(result))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    async def _perform(self, action: Action) -> Any:
        if isinstance(action, Send):
            return await self._send(action.request)
        if isinstance(action, Sleep):
            return await self._sleep(action.seconds)
        if action.stale:
            self._token_cache.invalidate(self._token_key, action.stale)
        return self._seen_token(
            await self._token_cache.aget(self._token_key, lambda: self._run(self._token_flow()))
        )

    async def _send(self, request: HttpRequest) -> HttpResponse | TransportFailure:
        if request.stream:  # a long download: each chunk gets its own deadline (``_stream``)
            timeout = aiohttp.ClientTimeout(sock_connect=request.timeout, sock_read=request.timeout)
        else:
            timeout = aiohttp.ClientTimeout(total=request.timeout)
        proxy = self._transport.proxy(request.url)
        route = proxy_route(proxy) if proxy else None
        try:
            response = await self._http().request(
                request.method,
                request.url,
                headers=dict(request.headers),
                data=request.content,
                timeout=timeout,
                allow_redirects=False,
                proxy=route.url if route else None,
                proxy_headers=route.headers if route else None,
                ssl=self._transport.ssl(request.url),
            )
            headers = {key.lower(): value for key, value in response.headers.items()}
            if request.stream and response.ok:
                return HttpResponse(response.status, headers, stream=response)
            async with response:
                return HttpResponse(response.status, headers, await response.read())
        except (aiohttp.ClientError, TimeoutError) as exc:
            if isinstance(exc, _NOT_SENT):
                return TransportFailure(
                    without_query(f"{type(exc).__name__}: {exc}", request.url), maybe_sent=False
                )
            if isinstance(exc, TimeoutError):
                return TransportFailure(deadline_message(request.timeout), maybe_sent=True)
            return TransportFailure(
                without_query(f"{type(exc).__name__}: {exc}", request.url), maybe_sent=True
            )

    # ---- streaming downloads ---------------------------------------------------------------------
    def iter_download(self, url: str, *, chunk_size: int = 1 << 20) -> AsyncIterator[bytes]:
        """Stream a pre-signed result URL in chunks (constant memory; no auth headers sent).

        A 403 raises AmcDownloadExpiredError; transient errors are retried before the first byte.
        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise AmcConfigError(f"chunk_size must be a positive integer (got {chunk_size!r})")
        return self._stream(url, chunk_size)

    async def _stream(self, url: str, chunk_size: int) -> AsyncIterator[bytes]:
        response: aiohttp.ClientResponse = (await self._run(download_flow(self._ctx, url))).stream
        seconds = self.settings.timeout
        async with response:
            while True:
                try:
                    async with asyncio.timeout(seconds):
                        chunk = await _read_chunk(response.content, chunk_size)
                except TimeoutError:
                    raise AmcTransportError(
                        f"Download interrupted: {deadline_message(seconds, chunk_size)}"
                    ) from None
                except aiohttp.ClientError as exc:
                    reason = without_query(f"{type(exc).__name__}: {exc}", url)
                    raise AmcTransportError(f"Download interrupted: {reason}") from None
                if not chunk:
                    return
                yield chunk


async def _read_chunk(content: aiohttp.StreamReader, size: int) -> bytes:
    """Up to ``size`` bytes: fewer only at the end of the body (same chunks as requests')."""
    parts: list[bytes] = []
    missing = size
    while missing > 0:
        part = await content.read(missing)
        if not part:
            break
        parts.append(part)
        missing -= len(part)
    return b"".join(parts)
