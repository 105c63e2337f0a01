"""Fixtures of the reliability suite and the end-of-run summary (``pytest_terminal_summary``).

The Airflow test environment (temporary ``AIRFLOW_HOME``, SQLite) is applied here, before any test
module of this directory imports Airflow.
"""

from __future__ import annotations

from airflow_env import amc_connection_env, apply_airflow_test_env, postgres_connection_env

apply_airflow_test_env()

import os  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from reliability_registry import COUNTERS, count, summary_lines  # noqa: E402

from airflow_provider_amc.emulator.testing import EmulatorServer  # noqa: E402

#: Fast retry policy for fault tests: tiny backoff, short per-request timeout.
FAST_RETRY = {"backoff_base": 0.02, "backoff_max": 0.1, "timeout": 2.0}
REPORT = Path(__file__).resolve().parents[2] / "docs" / "reliability.md"
PG_CONN_ID = "amc_reliability_pg"


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    """Make every hook (worker and triggerer side) use :data:`FAST_RETRY` on top of its connection.

    The connection has no extras for the backoff (see docs/reliability.md), so the settings factory
    the hook calls is wrapped.
    """
    from airflow_provider_amc.hooks import amc as hook_module

    original = hook_module.settings_from_connection

    def fast(conn: Any, extra: Any, **overrides: Any) -> Any:
        return original(conn, extra, **{**FAST_RETRY, **{k: v for k, v in overrides.items() if v}})

    monkeypatch.setattr(hook_module, "settings_from_connection", fast)
    return FAST_RETRY


@pytest.fixture
def amc_env(emulator: EmulatorServer, monkeypatch: pytest.MonkeyPatch) -> EmulatorServer:
    """``amc_default`` and the Postgres connection point at the (reset) emulator / ``test`` DB."""
    env = {**amc_connection_env(emulator.url), **postgres_connection_env(PG_CONN_ID)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    emulator.admin.clear_requests()
    return emulator


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    """Print the reliability counters; write them to docs/reliability.md when asked to."""
    if not any(count(name) for name in COUNTERS):
        return  # the reliability suite did not run in this session
    terminalreporter.write_sep("=", "AMC provider reliability summary")
    for line in summary_lines():
        terminalreporter.write_line(line)
    if os.environ.get("AMC_RELIABILITY_REPORT"):
        _write_report(exitstatus)


def _write_report(exitstatus: int) -> None:
    """Replace the generated block of docs/reliability.md with this run's counters."""
    start, end = "<!-- summary:start -->", "<!-- summary:end -->"
    text = REPORT.read_text() if REPORT.exists() else f"{start}\n{end}\n"
    block = "\n".join(
        [
            start,
            f"Last run: {date.today().isoformat()}, command "
            "`AMC_RELIABILITY_REPORT=1 .venv/bin/pytest tests/reliability -q`, "
            f"pytest exit status {exitstatus}.",
            "",
            "```",
            *summary_lines(),
            "```",
            end,
        ]
    )
    before, _, rest = text.partition(start)
    _, _, after = rest.partition(end)
    REPORT.write_text(before + block + after)
