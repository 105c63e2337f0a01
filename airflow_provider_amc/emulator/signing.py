"""Pre-signed-S3-style download URLs: HMAC signed, valid for 600 seconds (wall clock by default)."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlencode

from airflow_provider_amc.emulator.defaults import DOWNLOAD_URL_EXPIRES_SECONDS

ALGORITHM: Final = "AWS4-HMAC-SHA256"
DATE_FORMAT: Final = "%Y%m%dT%H%M%SZ"
_CREDENTIAL_SCOPE: Final = "AKIAEMULATOR00000000/{day}/us-east-1/s3/aws4_request"


class UrlRejected(Exception):
    """The URL is expired or its signature does not match (S3 answers 403 for both)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class UrlSigner:
    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def _signature(self, path: str, amz_date: str, expires: str) -> str:
        material = f"{path}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._secret, material, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, path: str, now: datetime) -> str:
        """A URL for ``path`` (starting with ``/``) on ``base_url``, signed at ``now``."""
        amz_date = now.astimezone(UTC).strftime(DATE_FORMAT)
        expires = str(DOWNLOAD_URL_EXPIRES_SECONDS)
        query = {
            "X-Amz-Algorithm": ALGORITHM,
            "X-Amz-Credential": _CREDENTIAL_SCOPE.format(day=amz_date[:8]),
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": expires,
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(path, amz_date, expires),
        }
        return f"{base_url.rstrip('/')}{path}?{urlencode(query)}"

    def verify(self, path: str, query: dict[str, str], now: datetime) -> None:
        """Raise :class:`UrlRejected` unless the query carries a valid, unexpired signature."""
        amz_date = query.get("X-Amz-Date", "")
        expires = query.get("X-Amz-Expires", "")
        given = query.get("X-Amz-Signature", "")
        if not hmac.compare_digest(given, self._signature(path, amz_date, expires)):
            raise UrlRejected(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        signed_at = datetime.strptime(amz_date, DATE_FORMAT).replace(tzinfo=UTC)
        if now > signed_at + timedelta(seconds=int(expires)):
            raise UrlRejected("AccessDenied", "Request has expired")


def s3_error_xml(error: UrlRejected, request_id: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{error.code}</Code><Message>{error.message}</Message>"
        f"<RequestId>{request_id}</RequestId><HostId>emulator</HostId></Error>"
    )
