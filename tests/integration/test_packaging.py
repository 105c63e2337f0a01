"""The package as a user gets it: `pip install .` into a fresh virtualenv, then Airflow's own CLI.

Checks that the wheel carries the provider (entry point, modules, py.typed), that `airflow providers
list` / `providers hooks` show it, that `airflow connections add --conn-type amc` works and that
`AmcHook(...).test_connection()` succeeds against a running emulator.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from airflow_provider_amc.emulator import defaults

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


def run(cmd: list[str], env: dict[str, str], timeout: float = 600) -> str:
    # Run outside the checkout: with the package at the repository's top level, a working directory
    # of REPO would put the working-tree copy first on sys.path and hide a packaging bug.
    cwd = env["AIRFLOW_HOME"]
    result = subprocess.run(
        cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def fresh_install(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("fresh-venv")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    home = root / "airflow-home"
    home.mkdir()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
        PATH=f"{python.parent}:{env.get('PATH', '')}",
    )
    # Build the wheel first and install that file: what a user downloads, not the working tree.
    wheels = root / "dist"
    run([str(python), "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(REPO)], env)
    (wheel,) = wheels.glob("airflow_provider_amc-*.whl")
    run([str(python), "-m", "pip", "install", "--quiet", str(wheel)], env, timeout=900)
    return python, env


def test_wheel_contains_the_provider(fresh_install: tuple[Path, dict[str, str]]) -> None:
    python, env = fresh_install
    out = run(
        [
            str(python),
            "-c",
            "import importlib.metadata as m, importlib.resources as r, json, airflow_provider_amc as p;"
            "eps=[e.value for e in m.entry_points(group='apache_airflow_provider')];"
            "print(json.dumps({'eps': eps, 'typed': r.files(p).joinpath('py.typed').is_file(),"
            "'file': p.__file__}))",
        ],
        env,
    )
    info = json.loads(out)
    assert "airflow_provider_amc:get_provider_info" in info["eps"]
    assert info["typed"] is True
    assert not info["file"].startswith(str(REPO)), "the fresh venv must use the installed wheel"
    assert "site-packages" in info["file"]


def test_airflow_cli_lists_provider_and_hook(fresh_install: tuple[Path, dict[str, str]]) -> None:
    python, env = fresh_install
    airflow = str(python.parent / "airflow")
    providers = run([airflow, "providers", "list", "--output", "json"], env)
    names = {entry["package_name"]: entry for entry in json.loads(providers)}
    assert "airflow-provider-amc" in names
    hooks = run([airflow, "providers", "hooks", "--output", "json"], env)
    amc = [entry for entry in json.loads(hooks) if entry.get("connection_type") == "amc"]
    assert amc and amc[0]["class"] == "airflow_provider_amc.hooks.amc.AmcHook"


def test_connection_add_and_test_connection(fresh_install: tuple[Path, dict[str, str]], emulator) -> None:
    python, env = fresh_install
    airflow = str(python.parent / "airflow")
    run([airflow, "db", "migrate"], env)
    extra = {
        "refresh_token": defaults.DEFAULT_REFRESH_TOKEN,
        "advertiser_id": defaults.DEFAULT_ADVERTISER_ID,
        "marketplace_id": defaults.DEFAULT_MARKETPLACE_ID,
        "instance_id": defaults.DEFAULT_INSTANCE_ID,
        "token_url": f"{emulator.url}/auth/o2/token",
    }
    run(
        [
            airflow, "connections", "add", "amc_emulator", "--conn-type", "amc",
            "--conn-host", emulator.url, "--conn-login", defaults.DEFAULT_CLIENT_ID,
            "--conn-password", defaults.DEFAULT_CLIENT_SECRET, "--conn-extra", json.dumps(extra),
        ],
        env,
    )  # fmt: skip
    # `airflow connections test` reads the connection from the metadata DB and calls
    # AmcHook.test_connection(), the same path as the UI's Test button.
    out = run(
        [airflow, "connections", "test", "amc_emulator"], {**env, "AIRFLOW__CORE__TEST_CONNECTION": "Enabled"}
    )
    assert "Connection success!" in out, out
    token_calls = emulator.admin.count("POST", r"^/auth/o2/token$")
    instance_calls = emulator.admin.count("GET", r"^/amc/instances$")
    assert (token_calls, instance_calls) == (1, 1)
    assert defaults.DEFAULT_CLIENT_SECRET not in out


def test_test_connection_reports_bad_secret(fresh_install: tuple[Path, dict[str, str]], emulator) -> None:
    python, env = fresh_install
    conn = {
        "conn_type": "amc",
        "host": emulator.url,
        "login": defaults.DEFAULT_CLIENT_ID,
        "password": "not-the-secret",
        "extra": {
            "refresh_token": defaults.DEFAULT_REFRESH_TOKEN,
            "advertiser_id": defaults.DEFAULT_ADVERTISER_ID,
            "marketplace_id": defaults.DEFAULT_MARKETPLACE_ID,
            "token_url": f"{emulator.url}/auth/o2/token",
        },
    }
    out = run(
        [
            str(python),
            "-c",
            "from airflow_provider_amc.hooks.amc import AmcHook;"
            "ok, message = AmcHook('amc_bad').test_connection(); print(ok, message)",
        ],
        {**env, "AIRFLOW_CONN_AMC_BAD": json.dumps(conn)},
    )
    assert out.startswith("False"), out
    assert "invalid_client" in out or "AmcAuthError" in out
    assert "not-the-secret" not in out


def test_running_python_is_not_the_fresh_one(fresh_install: tuple[Path, dict[str, str]]) -> None:
    python, _ = fresh_install
    assert Path(sys.executable).resolve() != python.resolve()


# ---- without the [openlineage] extra -----------------------------------------------------------
NO_LINEAGE_DAG = """
import pendulum
from airflow.sdk import DAG, Asset
from airflow_provider_amc.operators.amc import AmcCreateExecutionOperator

with DAG("amc_no_lineage", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")) as dag:
    AmcCreateExecutionOperator(
        task_id="run", workflow_id="demo_campaign_report", time_window_type="ALL",
        postgres_conn_id=None, wait_for_completion=True, poll_interval=1,
        outlets=[Asset("amc://amcdemo0001/demo_campaign_report")],
    )
"""


def test_runs_unchanged_without_openlineage(fresh_install: tuple[Path, dict[str, str]], emulator) -> None:
    """The wheel without extras: no OpenLineage anywhere, yet a deferred run with an asset outlet
    completes (links, asset extra and lineage bookkeeping run; nothing imports OpenLineage)."""
    python, env = fresh_install
    probe = run(
        [
            str(python),
            "-c",
            "import importlib.util as u, sys;"
            "import airflow_provider_amc.operators.amc, airflow_provider_amc.sensors.amc,"
            " airflow_provider_amc.transfers.amc_to_postgres, airflow_provider_amc.operators.workflow;"
            "print(u.find_spec('openlineage') is None, u.find_spec('airflow.providers.openlineage') is None,"
            " any(m.startswith('openlineage') for m in sys.modules))",
        ],
        env,
    )
    assert probe.split() == ["True", "True", "False"], probe
    airflow = str(python.parent / "airflow")
    run([airflow, "db", "migrate"], env)
    links = run([airflow, "providers", "links", "--output", "json"], env)
    assert {"airflow_provider_amc.links.AmcExecutionLink", "airflow_provider_amc.links.AmcResultsLink"} <= {
        entry["extra_link_class_name"] for entry in json.loads(links)
    }
    dags = Path(env["AIRFLOW_HOME"]) / "dags-no-lineage"
    dags.mkdir(exist_ok=True)
    (dags / "amc_no_lineage.py").write_text(NO_LINEAGE_DAG)
    emulator.admin.script("demo_campaign_report", pending_seconds=1, running_seconds=1)
    conn = defaults.airflow_connection(emulator.url)
    out = run(
        [airflow, "dags", "test", "amc_no_lineage"],
        {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW_CONN_AMC_DEFAULT": json.dumps(conn)},
    )
    assert "Asset event extra set on 1 outlet(s)" in out, out[-3000:]
    assert "state=success" in out or "success" in out.lower(), out[-3000:]


# ---- the pytest plugin, as README shows it ----------------------------------------------------------
README_FILE_BLOCK = re.compile(r"```(?:python|toml)\n# (?P<path>[\w./-]+)\n.*?```", re.DOTALL)


def readme_example_files() -> dict[str, str]:
    """The files of README's pytest-plugin example: fenced blocks whose first line names the file."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Testing your DAGs") :]
    section = section[: section.index("\n## ")]
    files = {}
    for match in README_FILE_BLOCK.finditer(section):
        block = match.group(0)
        files[match.group("path")] = block[block.index("\n") + 1 : block.rindex("```")]
    return files


def test_readme_pytest_example_passes_in_a_fresh_project(
    fresh_install: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """README's example, byte for byte, in an empty project using the wheel's pytest plugin: two tests
    in one process, each with its own emulator, both pass."""
    python, env = fresh_install
    files = readme_example_files()
    assert set(files) == {"dags/my_amc_report.py", "tests/test_my_amc_report.py", "pyproject.toml"}
    project = tmp_path / "my-project"
    for name, content in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(content)
    run([str(python), "-m", "pip", "install", "--quiet", "pytest"], env, timeout=900)
    home = project / ".airflow"
    home.mkdir()
    project_env = {
        **env,
        "AIRFLOW_HOME": str(project),  # run() works in this directory
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    run([str(python), "-m", "airflow", "db", "migrate"], project_env)
    out = run([str(python), "-m", "pytest", "-p", "no:cacheprovider", "-v"], project_env, timeout=900)
    assert "2 passed" in out, out
    assert "test_report_runs_the_window_i_asked_for PASSED" in out
    assert "test_a_failed_amc_run_fails_the_task PASSED" in out
