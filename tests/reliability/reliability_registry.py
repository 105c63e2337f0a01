"""Session-wide counters of the reliability suite, printed at the end of the run.

Tests record what they did through :func:`record`; ``conftest.py`` prints :func:`summary_lines` in
``pytest_terminal_summary``. Counters only ever grow; a duplicate or a lost record is counted by
the test that observed it (and the test fails), so the summary shows what the run proved.
"""

from __future__ import annotations

from collections import Counter

#: Counter name -> what it means (also the print order).
COUNTERS: dict[str, str] = {
    "faults_injected": "faults injected (emulator fault rules hit, throttled answers, kills, outages)",
    "tasks_survived": "task code paths that completed despite the faults",
    "clear_failures": "faults that ended in a clear, documented error (as intended)",
    "duplicates": "duplicate AMC executions (must be 0)",
    "records_lost": "records or results lost (must be 0)",
    "bad_inputs": "bad inputs tried (each rejected before any HTTP/SQL call)",
    "valid_inputs": "generated inputs that were valid and accepted",
    "secrets_checked": "secret values searched for in logs, XCom, rendered fields and request log",
    "secret_places_searched": "places (log lines, exception texts, XComs, trigger events, task-state-store "
    "values, Postgres rows) searched for every secret form (raw, URL-encoded, each 16-char piece)",
    "hostile_answers": "hostile answers (echoing/HTML/truncated token answers, ids with '..', answers about "
    "another execution, lower-case statuses) that ended in a clear error or the right outcome",
    "calls_bounded": "HTTP or Postgres calls against trickling/silent servers or locked tables that ended "
    "within their documented bound",
}

_COUNTS: Counter[str] = Counter()


def record(name: str, amount: int = 1) -> None:
    """Add ``amount`` to counter ``name`` (one of :data:`COUNTERS`)."""
    if name not in COUNTERS:
        raise ValueError(f"unknown reliability counter {name!r}; allowed: {', '.join(COUNTERS)}")
    _COUNTS[name] += amount


def count(name: str) -> int:
    return _COUNTS[name]


def summary_lines() -> list[str]:
    """One line per counter, ``name: value  (meaning)``."""
    width = max(len(name) for name in COUNTERS)
    return [f"{name.ljust(width)} : {_COUNTS[name]:>6}   {meaning}" for name, meaning in COUNTERS.items()]
