"""The provider's pytest plugin (``airflow_provider_amc.pytest_plugin``, entry point ``pytest11``).

Each case runs pytest in a subprocess on a scratch project, the way a user's suite loads the
plugin (from the installed package's entry point, not from this repository's conftest).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

USER_TESTS = """
import json
import os

import pytest
import requests

SEEN = []


def test_first_emulator(amc_emulator, amc_connection, amc_request_log):
    assert amc_connection == "amc_default"
    conn = json.loads(os.environ["AIRFLOW_CONN_AMC_DEFAULT"])
    assert conn["host"] == amc_emulator.url and "verify" not in conn["extra"]
    SEEN.append(amc_emulator.url)
    requests.post(amc_emulator.url + "/auth/o2/token", data={"grant_type": "refresh_token"}, timeout=10)
    assert amc_request_log.count("POST", "^/auth/o2/token$") == 1


def test_second_emulator_is_another_one(amc_emulator, amc_request_log):
    SEEN.append(amc_emulator.url)
    assert SEEN[0] != SEEN[1]
    assert amc_request_log.entries() == []  # nothing of the first test's traffic
    with pytest.raises(requests.ConnectionError):
        requests.get(SEEN[0] + "/emulator/health", timeout=5)  # the first test's emulator has stopped


def test_connection_is_gone_after_its_test():
    assert "AIRFLOW_CONN_AMC_DEFAULT" not in os.environ


@pytest.mark.amc_emulator(tls=True, speed=5, seed=3)
def test_marker_options(amc_emulator, amc_connection):
    assert amc_emulator.url.startswith("https://") and amc_emulator.admin.clock()["speed"] == 5
    conn = json.loads(os.environ["AIRFLOW_CONN_AMC_DEFAULT"])
    assert conn["extra"]["verify"] == amc_emulator.ca_file


class TestOtherConnectionId:
    @pytest.fixture
    def amc_conn_id(self):
        return "my_amc"

    def test_conn_id_override(self, amc_connection):
        assert amc_connection == "my_amc" and "AIRFLOW_CONN_MY_AMC" in os.environ
"""

NO_FIXTURES = """
import os
import sys


def test_plugin_is_inert():
    assert not any(name == "airflow" or name.startswith("airflow.") for name in sys.modules)
    assert not any(name.startswith("fastapi") for name in sys.modules)
    assert not any(key.startswith("AIRFLOW_CONN") for key in os.environ)
"""


def run_pytest(project: Path, source: str) -> subprocess.CompletedProcess[str]:
    (project / "test_user.py").write_text(source)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN", "PYTEST_"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "test_user.py"],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_fixtures_give_each_test_its_own_emulator_and_scoped_connection(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, USER_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout


def test_plugin_is_loaded_from_the_entry_point_but_inert(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, NO_FIXTURES)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    plugins = subprocess.run(
        [sys.executable, "-m", "pytest", "--trace-config", "--co", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    ).stdout
    assert "airflow_provider_amc.pytest_plugin" in plugins or "amc_emulator" in plugins


def test_importing_the_plugin_imports_no_airflow_and_changes_no_setting() -> None:
    probe = (
        "import os, sys; before = dict(os.environ);"
        "import airflow_provider_amc.pytest_plugin;"
        "print(any(m.split('.')[0] == 'airflow' for m in sys.modules), dict(os.environ) == before)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "True"]
