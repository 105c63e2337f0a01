"""Sans-IO core shared by the sync and async clients.

An API call is described as data (:class:`Operation`). :func:`call` is the one place that knows
how to perform it: it is a generator that *yields actions* — :class:`GetToken`, :class:`Send`,
:class:`Sleep` — and receives their results from a transport driver (``sync.py`` with requests,
``aio.py`` with aiohttp). Response classification and parsing are pure functions. The public
operations are built on top of :func:`call` in ``operations.py``.
"""

from __future__ import annotations

import email.utils
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any, Final, TypeVar
from urllib.parse import urlencode, urlsplit

from airflow_provider_amc.client.errors import (
    AmcApiError,
    AmcAuthError,
    AmcDownloadExpiredError,
    AmcError,
    AmcNotFoundError,
    AmcResponseError,
    AmcServerError,
    AmcThrottledError,
    AmcTransportError,
)
from airflow_provider_amc.client.settings import AmcSettings

log = logging.getLogger(__name__)

WORKFLOWS_MEDIA_TYPE: Final = "application/vnd.amcworkflows.v1+json"
EXECUTIONS_MEDIA_TYPE: Final = "application/vnd.amcworkflowexecutions.v1+json"
INSTANCES_MEDIA_TYPE: Final = "application/vnd.amcinstances.v1+json"
ACCOUNTS_MEDIA_TYPE: Final = "application/vnd.amcaudiencesconnections.v1+json"
FORM_MEDIA_TYPE: Final = "application/x-www-form-urlencoded"
RETRYABLE_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
SNIPPET_CHARS: Final = 200
#: The longest Retry-After a call sleeps on; a longer hint ends the call with AmcThrottledError
#: (its ``retry_after`` set) so the caller can wait without blocking: defer, or poll later.
RETRY_AFTER_CEILING: Final = 300.0
#: The longest Retry-After believed: AMC's longest limit is its daily quota. A longer (hostile or
#: broken) hint counts as a day, so no task waits for ever and no deferral date overflows.
MAX_RETRY_AFTER: Final = 86400.0

T = TypeVar("T")


# ---- what a call is --------------------------------------------------------------------------
class Kind:
    """What kind of endpoint an operation talks to (drives authentication and error mapping)."""

    API: Final = "api"
    TOKEN: Final = "token"  # noqa: S105 - an endpoint kind, not a secret
    DOWNLOAD: Final = "download"


@dataclass(frozen=True)
class Operation:
    """One HTTP operation, described as data.

    ``idempotent`` says whether the request may be repeated after it may have reached the server
    (timeouts, dropped connections, 5xx). Creating POSTs are not: they are only retried on 429
    (AMC did not process it) or when the connection failed before anything was sent.
    """

    method: str
    url: str
    media_type: str | None = None
    query: Mapping[str, str] = field(default_factory=dict)
    json_body: Any = None
    form_body: Mapping[str, str] | None = None
    idempotent: bool = True
    kind: str = Kind.API
    stream: bool = False

    @property
    def label(self) -> str:
        """``METHOD path`` for logs and messages (no query string, no host, nothing secret)."""
        return f"{self.method} {urlsplit(self.url).path}"

    def __repr__(self) -> str:  # the token grant's form holds the refresh token and client secret
        return f"Operation({self.label}, kind={self.kind})"


@dataclass(frozen=True)
class HttpRequest:
    """A fully built request for a driver to send (body already encoded)."""

    method: str
    url: str
    headers: Mapping[str, str]
    content: bytes | None
    timeout: float
    stream: bool = False

    def __repr__(self) -> str:  # never show headers: they hold the bearer token
        return f"HttpRequest({self.method} {urlsplit(self.url).path})"


@dataclass(frozen=True)
class HttpResponse:
    """What a driver got back. ``headers`` keys are lower-case. For a streamed 2xx answer ``body``
    is empty and ``stream`` is the driver's open response, to be read by the driver."""

    status: int
    headers: Mapping[str, str]
    body: bytes = b""
    stream: Any = None

    @property
    def request_id(self) -> str | None:
        return self.headers.get("x-amz-request-id") or self.headers.get("x-amz-rid")

    def __repr__(self) -> str:  # a token answer's body holds the access token
        return f"HttpResponse({self.status}, {len(self.body)} bytes)"


def without_query(text: str, url: str) -> str:
    """``text`` with ``url``'s query string hidden (pre-signed download URLs carry a signature
    usable for minutes; transport errors quote the request target)."""
    query = urlsplit(url).query
    return text.replace(f"?{query}", "?<query hidden>") if query else text


@dataclass(frozen=True)
class TransportFailure:
    """The request failed without an HTTP answer. ``maybe_sent`` is False only when the
    connection was never established (refused, DNS, connect timeout)."""

    message: str
    maybe_sent: bool


def deadline_message(seconds: float, chunk_size: int | None = None) -> str:
    """The one wording of a total-deadline failure (both drivers)."""
    if chunk_size is None:
        return f"no complete answer within the total deadline of {seconds:g} s (the timeout setting)"
    return f"less than {chunk_size} bytes arrived within {seconds:g} s (the timeout setting)"


# ---- actions yielded to drivers ---------------------------------------------------------------
@dataclass(frozen=True)
class GetToken:
    """Ask the driver for an access token; ``stale`` is a token AMC just refused (drop it first)."""

    stale: str | None = None


@dataclass(frozen=True)
class Send:
    """Send ``request``; the driver answers with an :class:`HttpResponse` or :class:`TransportFailure`."""

    request: HttpRequest


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` before the next attempt; the driver answers None."""

    seconds: float


Action = GetToken | Send | Sleep
#: A call in progress: yields actions, receives their results, returns the call's value.
Flow = Generator[Action, Any, T]


# ---- retry policy ----------------------------------------------------------------------------
def full_jitter(cap: float) -> float:
    """A random delay in [0, cap] ("full jitter" exponential backoff)."""
    return random.uniform(0.0, cap)


@dataclass(frozen=True)
class CallContext:
    """Per-client constants a flow needs: settings and the (injectable) jitter function."""

    settings: AmcSettings
    jitter: Callable[[float], float] = full_jitter

    def backoff(self, attempt: int) -> float:
        """Delay before retry number ``attempt`` (1-based): full jitter, capped at backoff_max."""
        cap = min(self.settings.backoff_max, self.settings.backoff_base * 2 ** (attempt - 1))
        return self.jitter(cap)

    @property
    def secrets(self) -> tuple[str, str]:
        """The settings' secrets, for :func:`redact` (an answer may echo the request's form)."""
        return self.settings.client_secret.get_secret_value(), self.settings.refresh_token.get_secret_value()

    def api_headers(self, media_type: str | None, has_body: bool) -> dict[str, str]:
        settings = self.settings
        headers = {
            "Amazon-Advertising-API-ClientId": settings.client_id,
            "Amazon-Advertising-API-AdvertiserId": settings.advertiser_id,
            "Amazon-Advertising-API-MarketplaceId": settings.marketplace_id,
        }
        if media_type:
            headers["Accept"] = media_type
            if has_body:
                headers["Content-Type"] = media_type
        return headers


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), at most
    :data:`MAX_RETRY_AFTER`; None when absent or not a wait (negative or not-a-number seconds)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # "-0000": an HTTP date is GMT, never the worker's local time
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, when.timestamp() - now())
    if math.isnan(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER)


# ---- request building --------------------------------------------------------------------------
def build_request(ctx: CallContext, op: Operation, token: str | None) -> HttpRequest:
    """Encode the body, add the query string and the headers the endpoint kind needs."""
    url = f"{op.url}?{urlencode(op.query)}" if op.query else op.url
    content: bytes | None = None
    if op.kind == Kind.TOKEN:
        headers = {"Content-Type": FORM_MEDIA_TYPE, "Accept": "application/json"}
        content = urlencode(op.form_body or {}).encode()
    elif op.kind == Kind.DOWNLOAD:
        headers = {}
    else:
        if op.json_body is not None:
            content = json.dumps(op.json_body, separators=(",", ":")).encode()
        headers = ctx.api_headers(op.media_type, content is not None)
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
    return HttpRequest(op.method, url, headers, content, ctx.settings.timeout, op.stream)


# ---- response parsing and classification -----------------------------------------------------------
#: A Login with Amazon token (access ``Atza|…``, refresh ``Atzr|…``; ``|`` maybe URL-encoded),
#: whoever's it is: never quoted from an answer.
_LWA_TOKEN = re.compile(r"(Atz[ar](?:\||%7[Cc]))[^\s\"'&,;<>]+")
REDACTED: Final = "***"


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """``text`` (quoted from an answer) with ``secrets`` and any LwA token replaced by ``***``.

    Gateways and proxies may echo the request: its bearer token, or the token grant's form.
    """
    for secret in secrets:
        if secret:
            text = text.replace(secret, REDACTED)
    return _LWA_TOKEN.sub(rf"\1{REDACTED}", text)


def snippet(body: bytes) -> str:
    text = body[:SNIPPET_CHARS].decode("utf-8", errors="replace")
    text = " ".join(text.split())
    return text + ("…" if len(body) > SNIPPET_CHARS else "")


def parse_json(response: HttpResponse, op: Operation) -> Any:
    """The JSON body of a 2xx answer (empty body → ``{}``); whatever its Content-Type says."""
    if not response.body.strip():
        return {}
    try:
        return json.loads(response.body)
    except (ValueError, UnicodeDecodeError):
        quoted = "" if op.kind == Kind.TOKEN else f": {redact(snippet(response.body))!r}"  # may echo secrets
        raise AmcResponseError(
            f"{op.label} answered HTTP {response.status} with a body that is not valid JSON{quoted}",
            status_code=response.status,
            request_id=response.request_id,
        ) from None


#: Keys whose value is an error answer's text: AMC's ``details``/``statusReason``, the gateway's
#: ``message`` (``Message`` in API Gateway's authorizer answers).
ERROR_TEXT_KEYS = ("details", "message", "Message", "statusReason")


@dataclass(frozen=True)
class ErrorBody:
    """The useful fields of an error answer (AMC ``{code, details}`` or LwA ``{error, ...}``)."""

    code: str | None = None
    details: str | None = None
    error: str | None = None
    error_description: str | None = None

    @classmethod
    def parse(cls, body: bytes) -> ErrorBody:
        try:
            data = json.loads(body) if body.strip() else {}
        except (ValueError, UnicodeDecodeError):
            data = None
        if not isinstance(data, dict):
            return cls(details=snippet(body) or None)
        text = next((data[k] for k in ERROR_TEXT_KEYS if data.get(k)), None)
        if text is None and not (data.get("error") or data.get("error_description")):
            text = snippet(body) or None  # an unknown error shape: the body says more than nothing
        code = data.get("code")
        return cls(
            code=None if code is None else str(code),
            details=None if text is None else str(text),
            error=data.get("error"),
            error_description=data.get("error_description"),
        )


#: An OAuth 2 ``error`` code (RFC 6749 §5.2: a short ASCII word); anything else is not quoted.
_OAUTH_ERROR = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


#: What to check for the OAuth error codes a wrong setting causes (RFC 6749 §5.2, LwA's answers).
_TOKEN_ERROR_HINTS: Final = {
    "invalid_client": "client_id and client_secret (the amc connection's Login and Password)",
    "invalid_grant": "refresh_token (revoked, expired, or issued to another client id than client_id)",
    "unauthorized_client": "client_id (the amc connection's Login)",
}


def token_error(op: Operation, response: HttpResponse) -> AmcAuthError:
    """The error for a refused token request: the HTTP status and the OAuth ``error`` code only.

    Nothing else of the body enters the message or the exception: token endpoints (and the proxies
    in front of them) echo the request form, i.e. the refresh token and the client secret.
    """
    parsed = ErrorBody.parse(response.body)
    code = parsed.error if isinstance(parsed.error, str) and _OAUTH_ERROR.match(parsed.error) else None
    reason = f"HTTP {response.status}, OAuth error {code}" if code else f"HTTP {response.status}"
    hint = _TOKEN_ERROR_HINTS.get(code or "")
    return AmcAuthError(
        f"Login with Amazon refused the token request ({reason})" + (f": check {hint}" if hint else ""),
        error=code,
        status_code=response.status,
        request_id=response.request_id,
    )


def api_error(
    op: Operation, response: HttpResponse, extra: str = "", secrets: Iterable[str | None] = ()
) -> AmcError:
    """The typed error for a final (non-retried) error answer; ``secrets`` (and any LwA token)
    are redacted from what is quoted of the body."""
    status = response.status
    parsed = ErrorBody.parse(response.body)
    secrets = tuple(secrets)

    def quoted(value: str | None) -> str | None:
        return None if value is None else redact(value, secrets)

    fields: dict[str, Any] = {
        "status_code": status,
        "code": quoted(parsed.code),
        "details": quoted(parsed.details),
        "request_id": response.request_id,
    }
    text = quoted(parsed.details or parsed.error_description or parsed.error) or "no details"
    message = f"{op.label} failed with HTTP {status}: {text}{extra}"
    if op.kind == Kind.TOKEN:
        return token_error(op, response)
    if op.kind == Kind.DOWNLOAD and status == 403:
        return AmcDownloadExpiredError(
            f"Download URL refused with HTTP 403 (expired or altered pre-signed URL; ask for fresh "
            f"download URLs): {text}",
            **fields,
        )
    if status in (401, 403):
        return AmcAuthError(message, **fields)
    if status == 404 or (status == 400 and "does not exist" in (parsed.details or "").lower()):
        return AmcNotFoundError(message, **fields)
    if status == 429:
        return AmcThrottledError(
            message, retry_after=parse_retry_after(response.headers.get("retry-after")), **fields
        )
    if status >= 500:
        return AmcServerError(message, **fields)
    return AmcApiError(message, **fields)


@dataclass(frozen=True)
class Retry:
    delay: float
    reason: str


@dataclass(frozen=True)
class Refresh:
    """Drop the refused token, get a new one and repeat the request (once per call)."""


Decision = HttpResponse | Retry | Refresh | AmcError


def classify(
    ctx: CallContext,
    op: Operation,
    result: HttpResponse | TransportFailure,
    attempt: int,
    refreshed: bool,
    token: str | None = None,
) -> Decision:
    """Decide what to do with one attempt's result: return it, retry, refresh the token, or fail
    (``token``: the access token the request carried, never quoted in an error)."""
    can_retry = attempt < ctx.settings.max_attempts
    secrets = (*ctx.secrets, token)
    if isinstance(result, TransportFailure):
        if result.maybe_sent and not op.idempotent:
            return AmcTransportError(
                f"{op.label} failed ({result.message}); not retried because the request may have "
                "reached AMC — check for the execution/workflow before submitting again"
            )
        if can_retry:
            return Retry(ctx.backoff(attempt), result.message)
        return AmcTransportError(f"{op.label} failed after {attempt} attempt(s): {result.message}")
    status = result.status
    if 200 <= status < 300:
        return result
    if status in (401, 403) and op.kind == Kind.API and not refreshed:
        return Refresh()
    if status in RETRYABLE_STATUSES and can_retry and (status == 429 or op.idempotent):
        hint = parse_retry_after(result.headers.get("retry-after")) if status == 429 else None
        if hint is not None and hint > RETRY_AFTER_CEILING:
            # Longer than one call may block: asking again sooner only spends the rate limit. The
            # caller decides (the create operator defers until then, the trigger waits that long).
            return api_error(
                op, result, f" (Retry-After {hint:.0f} s is longer than a call waits; not retried)", secrets
            )
        return Retry(hint if hint is not None else ctx.backoff(attempt), f"HTTP {status}")
    extra = f" (after {attempt} attempts)" if status in RETRYABLE_STATUSES and attempt > 1 else ""
    return api_error(op, result, extra, secrets)


# ---- the one call loop ----------------------------------------------------------------------------
def call(ctx: CallContext, op: Operation) -> Flow[HttpResponse]:
    """Perform ``op`` with token handling, retries and backoff; returns the 2xx response."""
    attempt, refreshed, stale = 0, False, None
    while True:
        attempt += 1
        token: str | None = None
        if op.kind == Kind.API:
            token = yield GetToken(stale)
            stale = None
        result = yield Send(build_request(ctx, op, token))
        decision = classify(ctx, op, result, attempt, refreshed, token)
        if isinstance(decision, HttpResponse):
            return decision
        if isinstance(decision, AmcError):
            raise decision
        if isinstance(decision, Refresh):
            log.info(
                "%s answered HTTP %s; refreshing the access token and retrying once",
                op.label,
                getattr(result, "status", "?"),
            )
            refreshed, stale, attempt = True, token, attempt - 1
            continue
        log.warning(
            "%s: %s (attempt %d of %d); retrying in %.2fs",
            op.label,
            decision.reason,
            attempt,
            ctx.settings.max_attempts,
            decision.delay,
        )
        yield Sleep(decision.delay)


def call_json(ctx: CallContext, op: Operation) -> Flow[Any]:
    """:func:`call`, then the parsed JSON body."""
    response = yield from call(ctx, op)
    return parse_json(response, op)


def parse_with(op: Operation, parse: Callable[[Any], T], body: Any, status: int = 200) -> T:
    """Run a model parser on a JSON body; a shape that does not fit becomes AmcResponseError."""
    try:
        return parse(body)
    except (ValueError, TypeError) as exc:  # pydantic ValidationError is a ValueError
        raise AmcResponseError(
            f"{op.label} answered HTTP {status} with an unexpected body: {exc}; "
            f"body starts {snippet(json.dumps(body).encode())!r}",
            status_code=status,
        ) from None


#: Most pages one list call follows. AMC pages hold up to 100 items; a server that keeps sending a
#: new ``nextToken`` would otherwise keep a call (e.g. the lost-create lookup) paging for ever.
MAX_LIST_PAGES: Final = 1000


def paginate(
    ctx: CallContext,
    make_op: Callable[[str | None], Operation],
    parse_page: Callable[[Any], tuple[list[T], str | None]],
    max_items: int | None = None,
) -> Flow[list[T]]:
    """Follow ``nextToken`` until the last page (or ``max_items``); returns all items.

    More than :data:`MAX_LIST_PAGES` pages is an AmcResponseError (a repeated token ends the list).
    """
    items: list[T] = []
    token: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_LIST_PAGES):
        op = make_op(token)
        body = yield from call_json(ctx, op)
        page, token = parse_with(op, parse_page, body)
        items.extend(page)
        if max_items is not None and len(items) >= max_items:
            return items[:max_items]
        if not token or token in seen:
            return items
        seen.add(token)
    raise AmcResponseError(
        f"{make_op(None).label} still answered a nextToken after {MAX_LIST_PAGES} pages "
        f"({len(items)} items); stopped instead of paging for ever"
    )
