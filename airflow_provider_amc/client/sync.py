"""``AmcClient``: the synchronous AMC client, a thin driver over the shared flows (requests)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

import requests
import urllib3.exceptions

from airflow_provider_amc.client.auth import TokenCache
from airflow_provider_amc.client.deadline import Deadline, DeadlineAdapter
from airflow_provider_amc.client.errors import AmcConfigError, AmcTransportError
from airflow_provider_amc.client.operations import AmcOperations, SyncRunner, download_flow
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
from airflow_provider_amc.client.result_files import iter_result_parts, result_urls_by_key
from airflow_provider_amc.client.settings import AmcSettings

T = TypeVar("T")
_NOT_SENT = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.NameResolutionError)


class _HidePresignedQuery(logging.Filter):
    """urllib3 logs each request target at DEBUG, query string included: for a pre-signed result
    URL that is a signature usable for minutes. The query of such targets is hidden."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(_is_presigned(arg) for arg in record.args):
            record.args = tuple(_hide_query(arg) if _is_presigned(arg) else arg for arg in record.args)
        return True


def _is_presigned(value: object) -> bool:
    return isinstance(value, str) and "?" in value and ("X-Amz-" in value or "Signature=" in value)


def _hide_query(value: object) -> str:
    return str(value).split("?", 1)[0] + "?<query hidden>"


_URLLIB3_LOG = logging.getLogger("urllib3.connectionpool")
if not any(isinstance(f, _HidePresignedQuery) for f in _URLLIB3_LOG.filters):
    _URLLIB3_LOG.addFilter(_HidePresignedQuery())


def _new_session() -> requests.Session:
    """A session whose attempts obey a total deadline; proxies and the CA bundle are passed per
    request (``client.transport``), so the environment is not consulted a second time here."""
    session = requests.Session()
    session.trust_env = False
    adapter = DeadlineAdapter()
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the connection was never established (the request cannot have reached AMC)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    pending: list[object] = [exc]
    seen: set[int] = set()
    while pending:
        item = pending.pop()
        if id(item) in seen or item is None:
            continue
        seen.add(id(item))
        if isinstance(item, _NOT_SENT):
            return True
        if isinstance(item, BaseException):
            pending.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return False


class AmcClient(AmcOperations, SyncRunner):
    """Synchronous AMC client. One ``requests.Session`` (connection reuse) per client.

    Use as a context manager or call :meth:`close`. Pass ``session=`` to use your own session
    (it is then not closed by the client) and ``sleep=``/``jitter=``/``token_cache=`` in tests.
    """

    def __init__(
        self,
        settings: AmcSettings,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        token_cache: TokenCache | None = None,
        jitter: Callable[[float], float] = full_jitter,
        on_new_token: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__(settings, token_cache=token_cache, jitter=jitter, on_new_token=on_new_token)
        self._owns_session = session is None
        self._session = _new_session() if session is None else session
        self._sleep = sleep

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP session (when the client created it)."""
        if self._owns_session:
            self._session.close()

    # ---- the driver ---------------------------------------------------------------------------
    def _run(self, flow: Flow[T]) -> T:
        result: Any = None
        try:
            while True:
                result = self._perform(flow.send(result))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]

    def _perform(self, action: Action) -> Any:
        if isinstance(action, Send):
            return self._send(action.request)
        if isinstance(action, Sleep):
            return self._sleep(action.seconds)
        if action.stale:
            self._token_cache.invalidate(self._token_key, action.stale)
        return self._seen_token(self._token_cache.get(self._token_key, lambda: self._run(self._token_flow())))

    def _send(self, request: HttpRequest) -> HttpResponse | TransportFailure:
        proxy = self._transport.proxy(request.url)
        with Deadline(request.timeout) as deadline:
            try:
                response = self._session.request(
                    request.method,
                    request.url,
                    headers=dict(request.headers),
                    data=request.content,
                    timeout=request.timeout,
                    stream=request.stream,
                    allow_redirects=False,
                    proxies={urlsplit(request.url).scheme: proxy} if proxy else {},
                    verify=self._transport.verify,
                )
                headers = {key.lower(): value for key, value in response.headers.items()}
                if request.stream and response.ok:
                    response.amc_connections = deadline.connections  # type: ignore[attr-defined]
                    return HttpResponse(response.status_code, headers, stream=response)
                with response:
                    return HttpResponse(response.status_code, headers, response.content)
            except requests.RequestException as exc:
                if deadline.expired:
                    return TransportFailure(deadline_message(request.timeout), maybe_sent=True)
                return TransportFailure(
                    without_query(f"{type(exc).__name__}: {exc}", request.url),
                    maybe_sent=not _never_sent(exc),
                )

    # ---- result files ----------------------------------------------------------------------------
    def result_urls(self, execution_id: str, *, instance_id: str | None = None) -> dict[str, str]:
        """The execution's result URLs by object key (the URL's path), checked: at most
        ``MAX_DOWNLOAD_URLS`` distinct files and no ``nextToken`` (the spec has no second page)."""
        answer = self.get_download_urls(execution_id, instance_id=instance_id)
        return result_urls_by_key(answer, execution_id, self.settings.api_base_url)

    def iter_result_parts(
        self, execution_id: str, *, instance_id: str | None = None, chunk_size: int = 1 << 20
    ) -> Iterator[tuple[str, Iterator[bytes]]]:
        """Stream a SUCCEEDED execution's result files: ``(file name, chunk iterator)`` per part;
        an expired URL is re-fetched and matched by object key (see :mod:`.result_files`)."""
        return iter_result_parts(
            lambda: self.result_urls(execution_id, instance_id=instance_id),
            lambda url: self.iter_download(url, chunk_size=chunk_size),
            execution_id,
        )

    # ---- streaming downloads ---------------------------------------------------------------------
    def iter_download(self, url: str, *, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream a pre-signed result URL in chunks (constant memory; no auth headers sent).

        A 403 raises AmcDownloadExpiredError; transient errors are retried before the first byte.
        """
        if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
            raise AmcConfigError(f"chunk_size must be a positive integer (got {chunk_size!r})")
        return self._stream(url, chunk_size)

    def _stream(self, url: str, chunk_size: int) -> Iterator[bytes]:
        response: requests.Response = self._run(download_flow(self._ctx, url)).stream
        seconds = self.settings.timeout
        with response:
            chunks = response.iter_content(chunk_size)
            while True:
                with Deadline(seconds, response.amc_connections) as deadline:  # type: ignore[attr-defined]
                    try:
                        chunk = next(chunks, None)
                    except requests.RequestException as exc:
                        reason = deadline_message(seconds, chunk_size) if deadline.expired else f"{exc}"
                        raise AmcTransportError(
                            f"Download interrupted: {without_query(reason, url)}"
                        ) from None
                if chunk is None:
                    return
                if chunk:
                    yield chunk
