"""The user's case of issue 14, run as one process: two AMC fakes on two ports, two ``dag.test()``.

Like a user's test module with two tests, each starting its own emulator and pointing
``AIRFLOW_CONN_AMC_DEFAULT`` at it. Run as ``python amc_two_fakes.py`` (with the test's
environment); prints one JSON line per run. No provider cache is reset between the runs.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pendulum

sys.path.insert(0, str(Path(__file__).parent))

import amc_dagtest

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.testing import EmulatorServer

POLL = r"^/amc/reporting/[^/]+/workflowExecutions/[^/]+$"

if __name__ == "__main__":
    for day in (10, 11):
        with EmulatorServer(seed=day) as server:
            server.admin.script(
                defaults.DEMO_WORKFLOW_ID, pending_seconds=1, running_seconds=1, rows=3, parts=1
            )
            os.environ["AIRFLOW_CONN_AMC_DEFAULT"] = json.dumps(defaults.airflow_connection(server.url))
            started = time.monotonic()
            run = amc_dagtest.dag.test(logical_date=pendulum.datetime(2026, 3, day, 12, tz="UTC"))
            result = {
                "url": server.url,
                "state": str(getattr(run.state, "value", run.state)),
                "seconds": round(time.monotonic() - started, 1),
                "creates": server.admin.count("POST", r"/workflowExecutions$"),
                "polls": server.admin.count("GET", POLL),
            }
        print("AMC_RUN " + json.dumps(result), flush=True)
