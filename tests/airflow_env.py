"""The Airflow side of the tests: a throw-away Airflow home, connections and a fake task context.

* :func:`apply_airflow_test_env` points ``AIRFLOW_HOME``, the DAGs folder and a SQLite metadata DB
  at a temporary directory. Airflow reads its configuration once, when ``airflow`` is first
  imported, so it must run before that (at the top of a test module, before any ``airflow`` or
  ``airflow_provider_amc.hooks|operators|sensors|triggers`` import). Calling it again in the same
  process is a no-op that returns the home chosen the first time.
  :func:`airflow_test_env` only builds the variables, for a subprocess (``dag.test()`` runs).
* :func:`amc_connection_env` / :func:`postgres_connection_env`: ``AIRFLOW_CONN_*`` variables for the
  emulator's seeded identities and the local Postgres.
* :class:`FakeTaskInstance` (records ``xcom_push``) and :class:`InMemoryTaskStateStore` (``get``/``set``
  like ``context["task_state_store"]``) for calling ``execute`` outside a task runner.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airflow_provider_amc.emulator import defaults

PG_TEST_DSN = "postgresql://postgres@127.0.0.1:5432/test"

#: Marks a process whose Airflow settings this module chose (value: the AIRFLOW_HOME).
MARKER = "AMC_TESTS_AIRFLOW_HOME"


def airflow_test_env(home: Path, dags_folder: Path | None = None) -> dict[str, str]:
    """The environment variables that make Airflow use ``home`` (SQLite DB inside it, no examples)."""
    dags = dags_folder or home / "dags"
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        MARKER: str(home),
    }


def apply_airflow_test_env(
    home: Path | None = None,
    dags_folder: Path | None = None,
    environ: os._Environ[str] | dict[str, str] | None = None,
) -> Path:
    """Set the test Airflow environment in this process (once) and return its ``AIRFLOW_HOME``.

    If Airflow was imported before (with settings this module did not choose) the variables are
    still set, for subprocesses, but this process keeps its settings: a warning says so.
    """
    env: Mapping[str, str] | dict[str, str] = os.environ if environ is None else environ
    existing = env.get(MARKER)
    if existing:
        return Path(existing)
    if environ is None and "airflow.configuration" in sys.modules:
        warnings.warn(
            "airflow was imported before apply_airflow_test_env(): this process keeps its Airflow "
            "settings; call it at the top of the test module (or in conftest.py) before importing airflow",
            stacklevel=2,
        )
    chosen = home or Path(tempfile.mkdtemp(prefix="amc-airflow-home-"))
    variables = airflow_test_env(chosen, dags_folder)
    Path(variables["AIRFLOW__CORE__DAGS_FOLDER"]).mkdir(parents=True, exist_ok=True)
    target = os.environ if environ is None else environ
    target.update(variables)
    return chosen


def connection_var(conn_id: str) -> str:
    """The environment variable Airflow reads connection ``conn_id`` from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def amc_connection_env(
    url: str, conn_id: str = "amc_default", instance_id: str | None = defaults.DEFAULT_INSTANCE_ID
) -> dict[str, str]:
    """An ``amc`` connection to the emulator at ``url`` with its seeded identities."""
    conn = defaults.airflow_connection(url, instance_id)
    return {connection_var(conn_id): json.dumps(conn)}


def postgres_connection_env(conn_id: str = "postgres_default", dsn: str = PG_TEST_DSN) -> dict[str, str]:
    """A Postgres connection (URI form) to the test database."""
    return {connection_var(conn_id): dsn}


# ---- a fake task context ---------------------------------------------------------------------------
@dataclass
class FakeTaskInstance:
    """The parts of a task instance the operators use; records every ``xcom_push``."""

    dag_id: str = "amc_test_dag"
    run_id: str = "manual__2026-03-10T00:00:00+00:00"
    task_id: str = "amc_task"
    map_index: int = -1
    try_number: int = 1
    pushed: list[tuple[str, Any]] = field(default_factory=list)

    def xcom_push(self, key: str, value: Any) -> None:
        json.dumps(value)  # XCom values must be JSON-serialisable, as in a real run
        self.pushed.append((key, value))

    def get_first_reschedule_date(self, context: Any) -> None:
        """Reschedule-mode sensors ask this; ``None`` = the first poke (no DB here)."""
        return None

    def pushed_value(self, key: str) -> Any:
        """The last value pushed under ``key`` (KeyError when never pushed)."""
        values = [value for pushed_key, value in self.pushed if pushed_key == key]
        if not values:
            raise KeyError(key)
        return values[-1]


class InMemoryTaskStateStore:
    """``context["task_state_store"]`` stand-in: ``get``/``set`` of JSON values, shared by tries."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sets = 0

    def get(self, key: str, default: Any = None) -> Any:
        return json.loads(self.values[key]) if key in self.values else default

    def set(self, key: str, value: Any, *, retention: Any = None) -> None:
        self.values[key] = json.dumps(value)  # stored as JSON, like the real store
        self.sets += 1


def task_context(ti: FakeTaskInstance | None = None, **values: Any) -> dict[str, Any]:
    """A minimal context dict: ``ti`` plus whatever the test adds (data interval, state store …)."""
    return {"ti": ti or FakeTaskInstance(), **values}


__all__ = [
    "MARKER",
    "PG_TEST_DSN",
    "FakeTaskInstance",
    "InMemoryTaskStateStore",
    "airflow_test_env",
    "amc_connection_env",
    "apply_airflow_test_env",
    "connection_var",
    "postgres_connection_env",
    "task_context",
]
