"""The emulator's controllable clock: ``start + real elapsed x speed + manual offset``.

Beside it runs a *wall* clock, ``start + real elapsed`` (no speed, no offset): access-token and
download-URL lifetimes are measured on it by default, so ``--speed`` and ``advance`` never make a
token or URL expire sooner than it would in real life (config ``scaled_lifetimes`` switches them
to the emulated clock, for tests of expiry).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Instant:
    """One moment read on both clocks."""

    emulated: datetime
    wall: datetime

    def plus(self, seconds: float) -> Instant:
        delta = timedelta(seconds=seconds)
        return Instant(self.emulated + delta, self.wall + delta)

    def earliest(self, other: Instant) -> Instant:
        return Instant(min(self.emulated, other.emulated), min(self.wall, other.wall))

    def on(self, scaled: bool) -> datetime:
        """The emulated reading when ``scaled``, else the wall reading."""
        return self.emulated if scaled else self.wall


class EmulatorClock:
    """Monotonic fake clock. Changing the speed re-anchors it so time never jumps."""

    def __init__(
        self,
        start: datetime | None = None,
        speed: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self._monotonic = monotonic
        self._lock = threading.Lock()
        begin = start if start is not None else datetime.now(UTC).replace(microsecond=0)
        if begin.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        self._anchor_emulated = begin.astimezone(UTC)
        self._anchor_real = monotonic()
        self._wall_anchor = (self._anchor_emulated, self._anchor_real)
        self._speed = speed
        self._offset = 0.0

    @property
    def speed(self) -> float:
        return self._speed

    @property
    def offset_seconds(self) -> float:
        """Total seconds added by :meth:`advance`."""
        return self._offset

    def now(self) -> datetime:
        """Current emulator time (UTC, aware)."""
        with self._lock:
            elapsed = (self._monotonic() - self._anchor_real) * self._speed
            return self._anchor_emulated + timedelta(seconds=elapsed + self._offset)

    def wall_now(self) -> datetime:
        """Start + real elapsed seconds: unaffected by the speed and by :meth:`advance`."""
        start, real = self._wall_anchor
        return start + timedelta(seconds=self._monotonic() - real)

    def instant(self) -> Instant:
        with self._lock:
            elapsed = (self._monotonic() - self._anchor_real) * self._speed
            emulated = self._anchor_emulated + timedelta(seconds=elapsed + self._offset)
        return Instant(emulated, self.wall_now())

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        current = self.now()
        with self._lock:
            self._anchor_emulated = current - timedelta(seconds=self._offset)
            self._anchor_real = self._monotonic()
            self._speed = speed

    def advance(self, seconds: float) -> datetime:
        """Jump forward by ``seconds`` emulator-seconds (never backwards)."""
        if seconds < 0:
            raise ValueError(f"seconds must be >= 0, got {seconds!r}")
        with self._lock:
            self._offset += seconds
        return self.now()

    def real_seconds(self, emulated_seconds: float) -> float:
        """How many real seconds it takes for ``emulated_seconds`` to pass at the current speed."""
        return emulated_seconds / self._speed
