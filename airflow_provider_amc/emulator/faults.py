"""Fault injection (status codes, resets, delays, malformed bodies) and a token-bucket throttle."""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

FaultKind = Literal["status", "reset", "delay", "truncated_json", "html"]
FAULT_STATUSES = (429, 500, 502, 503, 504)


class FaultSpec(BaseModel):
    """One fault rule, applied to the next ``count`` requests matching ``method`` and ``path``."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    method: str = Field("*", description="HTTP method, or '*' for any.")
    path: str = Field(".*", description="Regular expression searched in the request path.")
    count: int = Field(1, ge=1, le=1_000_000)
    status: int | None = Field(None, description="status kind: one of 429, 500, 502, 503, 504.")
    retry_after: int = Field(1, ge=0, le=3600, description="Retry-After seconds for 429/503.")
    delay_seconds: float = Field(0.0, ge=0, le=600, description="Real seconds to wait (delay kind).")

    @field_validator("path")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"path is not a valid regular expression: {exc}") from exc
        return value

    @field_validator("method")
    @classmethod
    def _upper(cls, value: str) -> str:
        return value.upper()

    @model_validator(mode="after")
    def _status_matches_kind(self) -> FaultSpec:
        if self.kind == "status":
            if self.status not in FAULT_STATUSES:
                raise ValueError(f"status must be one of {list(FAULT_STATUSES)} for kind 'status'")
        elif self.kind in ("truncated_json", "html"):
            self.status = self.status or (200 if self.kind == "truncated_json" else 502)
        return self


class _ActiveFault:
    def __init__(self, spec: FaultSpec) -> None:
        self.spec = spec
        self.remaining = spec.count
        self.pattern = re.compile(spec.path)

    def matches(self, method: str, path: str) -> bool:
        return self.remaining > 0 and self.spec.method in ("*", method) and bool(self.pattern.search(path))


class FaultInjector:
    def __init__(self) -> None:
        self._faults: list[_ActiveFault] = []
        self._lock = threading.Lock()

    def add(self, spec: FaultSpec) -> None:
        with self._lock:
            self._faults.append(_ActiveFault(spec))

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def pending(self) -> list[dict[str, object]]:
        with self._lock:
            return [{**f.spec.model_dump(), "remaining": f.remaining} for f in self._faults if f.remaining]

    def take(self, method: str, path: str) -> FaultSpec | None:
        """The first rule matching this request (consuming one of its uses), if any."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.remaining -= 1
                    return fault.spec
            self._faults = [f for f in self._faults if f.remaining]
        return None


class ThrottleSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rate: float = Field(..., gt=0, description="Tokens added per real second.")
    burst: int = Field(..., ge=1, description="Bucket size.")
    path: str = Field("^/amc/", description="Regular expression of throttled paths.")


class TokenBucket:
    """Classic token bucket on the real monotonic clock (request rates are real-time)."""

    def __init__(self, spec: ThrottleSpec, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.spec = spec
        self._pattern = re.compile(spec.path)
        self._monotonic = monotonic
        self._tokens = float(spec.burst)
        self._stamp = monotonic()
        self._lock = threading.Lock()

    def admit(self, path: str) -> int | None:
        """``None`` if the request may pass, else the Retry-After seconds."""
        if not self._pattern.search(path):
            return None
        with self._lock:
            now = self._monotonic()
            self._tokens = min(self.spec.burst, self._tokens + (now - self._stamp) * self.spec.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return None
            return max(1, math.ceil((1 - self._tokens) / self.spec.rate))
