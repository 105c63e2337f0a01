"""Login-with-Amazon token issuing and the API's bearer/header checks."""

from __future__ import annotations

import random
import string
import threading
from dataclasses import dataclass
from typing import Final

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.clock import Instant
from airflow_provider_amc.emulator.responses import ApiError

CLIENT_ID_HEADER: Final = "amazon-advertising-api-clientid"
ADVERTISER_HEADER: Final = "amazon-advertising-api-advertiserid"
MARKETPLACE_HEADER: Final = "amazon-advertising-api-marketplaceid"
_TOKEN_ALPHABET: Final = string.ascii_letters + string.digits + "-_"
_TOKEN_BODY_LENGTH: Final = 380


class LwaError(Exception):
    """OAuth2 error answer of the token endpoint."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class Credentials:
    client_id: str = defaults.DEFAULT_CLIENT_ID
    client_secret: str = defaults.DEFAULT_CLIENT_SECRET
    refresh_token: str = defaults.DEFAULT_REFRESH_TOKEN


class TokenStore:
    """Issued access tokens and their expiry, read on both clocks (see :class:`Instant`)."""

    def __init__(self, rng: random.Random, credentials: Credentials | None = None) -> None:
        self._rng = rng
        self.credentials = credentials or Credentials()
        self._expiry: dict[str, Instant] = {}
        self._lock = threading.Lock()

    def grant(self, form: dict[str, str], now: Instant) -> dict[str, object]:
        """Validate a refresh-token grant (§1.3-1.5) and issue a fresh ``Atza|`` token."""
        grant_type = form.get("grant_type")
        if not grant_type:
            raise LwaError(400, "invalid_request", "The request is missing a required parameter : grant_type")
        if grant_type != "refresh_token":
            raise LwaError(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server",
            )
        for field in ("refresh_token", "client_id", "client_secret"):
            if not form.get(field):
                raise LwaError(
                    400, "invalid_request", f"The request is missing a required parameter : {field}"
                )
        creds = self.credentials
        if form["client_id"] != creds.client_id or form["client_secret"] != creds.client_secret:
            raise LwaError(401, "invalid_client", "Client authentication failed")
        if form["refresh_token"] != creds.refresh_token:
            raise LwaError(
                400,
                "invalid_grant",
                "The request has an invalid grant parameter : refresh_token. "
                "User may have revoked or didn't grant the permission.",
            )
        token = "Atza|" + "".join(self._rng.choice(_TOKEN_ALPHABET) for _ in range(_TOKEN_BODY_LENGTH))
        with self._lock:
            self._expiry[token] = now.plus(defaults.ACCESS_TOKEN_LIFETIME_SECONDS)
        return {
            "access_token": token,
            "refresh_token": creds.refresh_token,
            "token_type": "bearer",
            "expires_in": defaults.ACCESS_TOKEN_LIFETIME_SECONDS,
        }

    def expire_all(self, now: Instant) -> int:
        with self._lock:
            for token in self._expiry:
                self._expiry[token] = self._expiry[token].earliest(now)
            return len(self._expiry)

    def is_valid(self, token: str, now: Instant, *, scaled: bool = False) -> bool:
        """Known and unexpired, on the wall clock (or the emulated one when ``scaled``)."""
        with self._lock:
            expiry = self._expiry.get(token)
        return expiry is not None and now.on(scaled) < expiry.on(scaled)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return value.strip() or None


def authenticate(
    tokens: TokenStore,
    headers: dict[str, str],
    now: Instant,
    *,
    failure_status: int,
    scaled_lifetimes: bool = False,
    require_account: bool = True,
) -> tuple[str, str]:
    """Check bearer + the AMC headers; return ``(advertiser_id, marketplace_id)``.

    ``headers`` must have lower-case keys (header names are case-insensitive). With
    ``require_account=False`` (``GET /amc/accounts``) only the ClientId header is required.
    """
    token = bearer_token(headers.get("authorization"))
    if token is None or not tokens.is_valid(token, now, scaled=scaled_lifetimes):
        details = "Authentication failed" if failure_status == 401 else "Unauthorized request."
        raise ApiError(failure_status, details)
    required = [("Amazon-Advertising-API-ClientId", CLIENT_ID_HEADER)]
    if require_account:
        required += [
            ("Amazon-Advertising-API-AdvertiserId", ADVERTISER_HEADER),
            ("Amazon-Advertising-API-MarketplaceId", MARKETPLACE_HEADER),
        ]
    missing = [name for name, key in required if not headers.get(key)]
    if missing:
        raise ApiError(400, f"Missing required header(s): {', '.join(missing)}")
    if headers[CLIENT_ID_HEADER] != tokens.credentials.client_id:
        raise ApiError(403, "Unauthorized request.")
    return headers.get(ADVERTISER_HEADER, ""), headers.get(MARKETPLACE_HEADER, "")
