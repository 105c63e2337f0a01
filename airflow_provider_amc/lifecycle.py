"""An AMC execution's story, in one place: its status, the request it answers, what it submitted.

* :class:`AmcStatus` — AMC's status values and what they mean here (normalised status, terminal,
  succeeded). The client hands AMC's raw text through; only this module interprets it.

No Airflow import: the operators, sensor, trigger and loader build on these types.
"""

from __future__ import annotations

import logging
import threading
from enum import StrEnum
from typing import Final, Literal

log = logging.getLogger(__name__)

NormalisedStatus = Literal["pending", "running", "completed", "failed"]
#: The normalised statuses, in lifecycle order (the execution table's CHECK constraint).
NORMALISED_STATUSES: Final[tuple[NormalisedStatus, ...]] = ("pending", "running", "completed", "failed")

_unknown_seen: set[str] = set()
_unknown_lock = threading.Lock()


class AmcStatus(StrEnum):
    """An AMC execution status (amc-api.md §4); compare and parse through :meth:`parse`.

    AMC's values are upper case; :meth:`parse` accepts any case. A value AMC may add later (or a
    legacy one such as ``PUBLISHING``) is not a member: :meth:`parse` answers ``RUNNING`` for it
    and logs it once per process, so a wait goes on rather than ending on a status nobody knows.
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"

    @classmethod
    def parse(cls, value: str | None) -> AmcStatus:
        """AMC's status text as a member (case-insensitive); unknown -> ``RUNNING`` (logged once)."""
        text = (value or "").strip().upper()
        try:
            return cls(text)
        except ValueError:
            with _unknown_lock:
                first = text not in _unknown_seen
                _unknown_seen.add(text)
            if first:
                log.warning("Unknown AMC execution status %r; treating it as still running", value)
            return cls.RUNNING

    @property
    def normalised(self) -> NormalisedStatus:
        """pending / running / completed / failed (the execution table's ``status``)."""
        return _NORMALISED[self]

    @property
    def is_terminal(self) -> bool:
        """Whether AMC will never change this execution again."""
        return self.normalised in ("completed", "failed")

    @property
    def succeeded(self) -> bool:
        return self is AmcStatus.SUCCEEDED


_NORMALISED: Final[dict[AmcStatus, NormalisedStatus]] = {
    AmcStatus.PENDING: "pending",
    AmcStatus.RUNNING: "running",
    AmcStatus.SUCCEEDED: "completed",
    AmcStatus.FAILED: "failed",
    AmcStatus.CANCELLED: "failed",
    AmcStatus.REJECTED: "failed",
}


def normalise_status(value: str | None) -> NormalisedStatus:
    """AMC's status text -> pending/running/completed/failed (unknown -> running, logged once)."""
    return AmcStatus.parse(value).normalised


__all__ = ["NORMALISED_STATUSES", "AmcStatus", "NormalisedStatus", "normalise_status"]
