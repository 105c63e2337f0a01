"""Typed errors raised by the AMC client.

Every error the client raises derives from :class:`AmcError`. Bad caller input raises
:class:`AmcConfigError` (also a :class:`ValueError`) before any HTTP call is made. Errors that come
from an HTTP answer derive from :class:`AmcApiError` and carry the status code, AMC's ``code`` and
``details`` and the ``x-amz-request-id`` when there was one.
"""

from __future__ import annotations


class AmcError(Exception):
    """Base class of every error raised by the AMC client."""


class AmcConfigError(AmcError, ValueError):
    """Invalid settings or call arguments; the message names the field (and the allowed values)."""


class AmcTransportError(AmcError):
    """The request could not be completed (connection error or timeout), after any retries."""


class AmcApiError(AmcError):
    """AMC (or Login with Amazon) answered with an error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        code: str | None = None,
        details: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.details = details
        self.request_id = request_id


class AmcAuthError(AmcApiError):
    """Authentication failed: the token endpoint refused the credentials, or AMC kept answering
    401/403 after one token refresh. ``error``/``error_description`` hold the LwA error fields."""

    def __init__(
        self,
        message: str,
        *,
        error: str | None = None,
        error_description: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        details: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, status_code=status_code, code=code, details=details, request_id=request_id)
        self.error = error
        self.error_description = error_description


class AmcNotFoundError(AmcApiError):
    """The resource does not exist (HTTP 404, or AMC's 400 "... does not exist.")."""


class AmcThrottledError(AmcApiError):
    """Still throttled (HTTP 429) after every allowed attempt; ``retry_after`` is AMC's last hint."""

    def __init__(self, message: str, *, retry_after: float | None = None, **fields: object) -> None:
        super().__init__(message, **fields)  # type: ignore[arg-type]
        self.retry_after = retry_after


class AmcServerError(AmcApiError):
    """AMC answered 5xx (after retries, or at once for a request that must not be repeated)."""


class AmcResponseError(AmcApiError):
    """AMC answered with a body the client cannot parse (truncated/invalid JSON, an HTML page...)."""


class AmcDownloadExpiredError(AmcApiError):
    """A pre-signed download URL answered 403: it expired (after 10 minutes) or was altered.
    Ask for fresh URLs with ``get_download_urls``."""
