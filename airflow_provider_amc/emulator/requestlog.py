"""The request log: what the emulator was asked, with every secret removed."""

from __future__ import annotations

import threading
from typing import Any, Final

from airflow_provider_amc.emulator.auth import ADVERTISER_HEADER, CLIENT_ID_HEADER, MARKETPLACE_HEADER

SECRET_KEYS: Final = frozenset({"client_secret", "refresh_token", "access_token", "code", "authorization"})
_RECORDED_HEADER_VALUES: Final[tuple[str, ...]] = (CLIENT_ID_HEADER, ADVERTISER_HEADER, MARKETPLACE_HEADER)
MAX_ENTRIES: Final = 100_000


def scrub(value: Any) -> Any:
    """Replace the values of secret keys (at any depth) by ``"***"``."""
    if isinstance(value, dict):
        return {k: "***" if str(k).lower() in SECRET_KEYS else scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(item) for item in value]
    return value


def header_summary(headers: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Header names (all), and the values of only the three non-secret AMC identity headers."""
    values = {name: headers[name] for name in _RECORDED_HEADER_VALUES if name in headers}
    return sorted(headers), values


class RequestLog:
    def __init__(self) -> None:
        self._entries: list[dict[str, Any]] = []
        self._seq = 0
        self._lock = threading.Lock()

    def record(self, entry: dict[str, Any]) -> int:
        with self._lock:
            self._seq += 1
            self._entries.append({"seq": self._seq, **entry})
            if len(self._entries) > MAX_ENTRIES:
                del self._entries[: len(self._entries) - MAX_ENTRIES]
            return self._seq

    def since(self, seq: int = 0) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self._entries if e["seq"] > seq]

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
