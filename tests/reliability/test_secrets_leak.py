"""Secrets: a full ``airflow dags test`` run of dags/amc_daily_report.py against the emulator and the
``test`` database; the client secret, the refresh token and every access token the emulator issued
must appear in no task log, no process output, no emulator request-log entry, no XCom value and no
rendered template field."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from reliability_registry import record

from airflow_env import airflow_test_env, amc_connection_env, postgres_connection_env
from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).parent / "airflow")


def airflow(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([AIRFLOW, *args], env=env, capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    return output


def issued_access_tokens(emulator: EmulatorServer) -> list[str]:
    """The access tokens the in-process emulator issued (its token store's keys)."""
    return list(emulator.state.tokens._expiry)


def test_no_secret_in_logs_xcom_rendered_fields_or_request_log(
    amc_env: EmulatorServer, tmp_path: Path
) -> None:
    amc_env.admin.set_speed(20)  # PENDING+RUNNING in well under a second of real time
    home = tmp_path / "airflow"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(airflow_test_env(home, REPO / "dags"))
    env.update(amc_connection_env(amc_env.url))
    env.update(postgres_connection_env())
    env.update(
        AMC_POKE_INTERVAL="1",
        AMC_OUTPUT_PATH=str(tmp_path / "output"),
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
    )
    output = airflow(env, "db", "migrate")
    # four days back: the day's window ended more than the DAG's 48 h min_data_age ago, in any zone
    day = (datetime.now(UTC) - timedelta(days=4)).strftime("%Y-%m-%d")
    output += airflow(env, "dags", "test", "amc_daily_report", day)

    tokens = issued_access_tokens(amc_env)
    assert tokens, "the run fetched no access token: it cannot have talked to the emulator"
    secrets = {
        "client secret": defaults.DEFAULT_CLIENT_SECRET,
        "refresh token": defaults.DEFAULT_REFRESH_TOKEN,
        **{f"access token {n}": token for n, token in enumerate(tokens)},
    }
    places: dict[str, str] = {"airflow stdout/stderr": output}
    for path in (home / "logs").rglob("*"):
        if path.is_file():
            places[f"log {path.relative_to(home)}"] = path.read_text(errors="replace")
    # `dags test` runs the tasks and the trigger in line: their logs are in the process output
    assert "Submitting AMC workflow" in output and "AMC execution" in output, "task logs not captured"
    places["emulator request log"] = json.dumps(amc_env.admin.requests())
    with sqlite3.connect(home / "airflow.db") as db:
        xcom = db.execute("SELECT key, value FROM xcom").fetchall()
        rendered = db.execute("SELECT rendered_fields FROM rendered_task_instance_fields").fetchall()
    assert xcom and rendered, "nothing to check: the run left no XCom / rendered fields"
    places["xcom"] = repr(xcom)
    places["rendered_task_instance_fields"] = repr(rendered)

    leaks = [
        (what, where) for what, secret in secrets.items() for where, text in places.items() if secret in text
    ]
    record("secrets_checked", len(secrets) * len(places))
    assert leaks == [], f"secrets found: {leaks}"
    assert "amc_execution_id" in places["xcom"] or "amc_output" in places["xcom"]
