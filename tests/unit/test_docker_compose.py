"""docker-compose.yaml is internally consistent (there is no Docker engine here to start it).

Checked: every service's command is a real Airflow CLI command (parsed by Airflow's own CLI parser,
in one subprocess so Airflow's configuration does not leak into this test process) or the emulator
module with flags its argparse accepts; build contexts, Dockerfiles and bind-mount sources exist;
``AIRFLOW_CONN_*`` values are JSON connections of the right type, and the AMC one carries the
emulator's seeded identities; the DAGs folder mount is ``dags/``; ``depends_on`` names services;
the pool created by the init service is the one the example DAG uses.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.__main__ import parse_args as parse_emulator_args

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
EXAMPLE_DAGS = sorted((REPO / "dags").glob("*.py"))
EXAMPLE_POOL = "amc_amcdemo0001"
EMULATOR_MODULE = "airflow_provider_amc.emulator"
CONTAINER_DAGS_FOLDER = "/opt/airflow/dags"
PROJECT_IMAGE = "airflow-provider-amc"

# Runs in a subprocess: parse each argv with Airflow's CLI parser; optionally import a DAG file and
# report the pools its tasks use.
_AIRFLOW_PROBE = r"""
import contextlib, importlib.util, io, json, sys
from airflow.cli.cli_parser import get_parser

request = json.load(sys.stdin)
parser = get_parser()
errors = []
for argv in request["argvs"]:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            parser.parse_args(argv)
        errors.append(None)
    except SystemExit:
        errors.append(err.getvalue().strip().splitlines()[-1] if err.getvalue().strip() else "invalid")
pools = {}
from airflow.sdk import DAG
for index, dag_file in enumerate(request["dag_files"]):
    spec = importlib.util.spec_from_file_location(f"example_dag_{index}", dag_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for dag in (value for value in vars(module).values() if isinstance(value, DAG)):
        pools.update({f"{dag.dag_id}.{t.task_id}": t.pool for t in dag.tasks})
print(json.dumps({"errors": errors, "pools": pools}))
"""


# ---------------------------------------------------------------------------------------- helpers


def load_compose() -> dict[str, Any]:
    with COMPOSE_FILE.open() as handle:
        return dict(yaml.safe_load(handle))


def as_argv(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return shlex.split(value) if isinstance(value, str) else [str(part) for part in value]


def uses_project_image(service: dict[str, Any]) -> bool:
    return "build" in service or str(service.get("image", "")).startswith(PROJECT_IMAGE)


def service_argv(service: dict[str, Any]) -> list[str]:
    """The process a service runs; the Airflow image's default entrypoint runs ``airflow <command>``."""
    entrypoint = as_argv(service.get("entrypoint"))
    if not entrypoint and uses_project_image(service):
        entrypoint = ["airflow"]
    return [*entrypoint, *as_argv(service.get("command"))]


def airflow_invocations(argv: list[str]) -> list[list[str]]:
    """Every ``airflow ...`` command in an argv, including those in a ``bash -c`` script."""
    if argv and argv[0] == "airflow":
        return [argv[1:]]
    if len(argv) >= 3 and Path(argv[0]).name == "bash" and argv[1] == "-c":
        commands = [shlex.split(part) for part in re.split(r"&&|;|\n", argv[2]) if part.strip()]
        return [command[1:] for command in commands if command and command[0] == "airflow"]
    return []


def with_defaults(value: str) -> str:
    """A value as compose resolves it when no variable is set: ``${NAME:-default}`` -> ``default``."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {str(key): with_defaults(str(value)) for key, value in env.items()}


def bind_mounts(service: dict[str, Any]) -> list[tuple[str, str]]:
    """(source, target) of the service's bind mounts (sources that are paths, not volume names)."""
    mounts = []
    for volume in service.get("volumes") or []:
        if isinstance(volume, dict):
            source, target = volume.get("source", ""), volume["target"]
        else:
            source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts.append((source, target))
    return mounts


def depends_on(service: dict[str, Any]) -> list[str]:
    value = service.get("depends_on") or []
    return list(value) if isinstance(value, list) else list(value.keys())


def is_airflow_service(service: dict[str, Any]) -> bool:
    return bool(airflow_invocations(service_argv(service)))


def run_airflow_probe(argvs: list[list[str]], dag_files: list[Path], env: dict[str, str], home: Path) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    result = subprocess.run(
        [sys.executable, "-c", _AIRFLOW_PROBE],
        input=json.dumps({"argvs": argvs, "dag_files": [str(path) for path in dag_files]}),
        env={
            **clean,
            **env,
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            # the CLI has the `celery` commands only with the CeleryExecutor (the "celery" profile)
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"Airflow probe failed:\n{result.stderr[-3000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------------------- fixtures

BOGUS_COMMANDS = [
    ["schedulerr"],
    ["pools", "set", "only-a-name"],
    ["db", "migrate", "--no-such-flag"],
    ["celery", "workerr"],
]
CELERY_PROFILE = {"redis", "airflow-worker", "airflow-triggerer-2"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(compose["services"])


@pytest.fixture(scope="module")
def common_env(compose: dict[str, Any]) -> dict[str, str]:
    return environment(compose["x-airflow-common"])


@pytest.fixture(scope="module")
def airflow_probe(
    services: dict[str, dict[str, Any]], common_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    """Parse every Airflow command of the file (plus known-bad ones) and load the example DAGs, once."""
    commands = {name: airflow_invocations(service_argv(service)) for name, service in services.items()}
    argvs = [argv for invocations in commands.values() for argv in invocations] + BOGUS_COMMANDS
    amc_env = {k: v for k, v in common_env.items() if k.startswith("AMC_")}
    probe = run_airflow_probe(argvs, EXAMPLE_DAGS, amc_env, tmp_path_factory.mktemp("airflow-home"))
    errors = iter(probe["errors"])
    yield {
        "errors": {name: [next(errors) for _ in invocations] for name, invocations in commands.items()},
        "bogus_errors": list(errors),
        "pools": probe["pools"],
    }


# ---------------------------------------------------------------------------------------- tests


def test_expected_services_and_common_anchor(compose: dict[str, Any], services: dict[str, Any]) -> None:
    assert {
        "postgres",
        "airflow-init",
        "airflow-api-server",
        "airflow-scheduler",
        "airflow-dag-processor",
        "airflow-triggerer",
        "amc-emulator",
    } <= set(services)
    common = compose["x-airflow-common"]
    assert common["image"].startswith(PROJECT_IMAGE)
    assert environment(common)["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    for name in ("airflow-init", "airflow-api-server", "airflow-scheduler", "airflow-dag-processor"):
        # merged from the anchor: same image and environment everywhere
        assert services[name]["image"] == common["image"]
        assert environment(services[name]) == environment(common)
    assert "healthcheck" in services["postgres"]


def test_services_run_airflow_components(services: dict[str, Any]) -> None:
    expected = {
        "airflow-api-server": ["api-server"],
        "airflow-scheduler": ["scheduler"],
        "airflow-dag-processor": ["dag-processor"],
        "airflow-triggerer": ["triggerer"],
    }
    for name, argv in expected.items():
        assert airflow_invocations(service_argv(services[name])) == [argv], name


def test_every_airflow_command_is_accepted_by_the_airflow_cli(
    services: dict[str, Any], airflow_probe: dict[str, Any]
) -> None:
    for name, service in services.items():
        if is_airflow_service(service):
            assert airflow_probe["errors"][name], f"{name}: no airflow command found"
            assert airflow_probe["errors"][name] == [None] * len(airflow_probe["errors"][name]), name


def test_the_cli_check_rejects_bad_commands(airflow_probe: dict[str, Any]) -> None:
    assert len(airflow_probe["bogus_errors"]) == len(BOGUS_COMMANDS)
    assert all(airflow_probe["bogus_errors"]), airflow_probe["bogus_errors"]


def test_non_airflow_services_are_postgres_or_the_emulator(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if is_airflow_service(service):
            continue
        if name == "postgres":
            assert str(service["image"]).startswith("postgres:")
            continue
        if name == "redis":
            assert str(service["image"]).startswith("redis:")
            assert service_argv(service)[0] == "redis-server"
            continue
        argv = service_argv(service)
        assert argv[:3] == ["python", "-m", EMULATOR_MODULE], f"{name} runs {argv}"


def test_emulator_command_is_accepted_by_the_emulator_cli(services: dict[str, Any]) -> None:
    assert (REPO / "airflow_provider_amc" / "emulator" / "__main__.py").is_file()
    argv = service_argv(services["amc-emulator"])
    args = parse_emulator_args(argv[3:])
    assert args.host == "0.0.0.0"
    ports = {str(port).split(":")[-1] for port in services["amc-emulator"].get("ports", [])}
    assert str(args.port) in ports
    with pytest.raises(SystemExit):  # the same check rejects flags the emulator does not have
        parse_emulator_args([*argv[3:], "--no-such-flag"])


def test_build_contexts_and_dockerfiles_exist(compose: dict[str, Any], services: dict[str, Any]) -> None:
    builds = [("x-airflow-common", compose["x-airflow-common"]["build"])]
    builds += [(name, s["build"]) for name, s in services.items() if "build" in s]
    for name, build in builds:
        context = REPO / (build if isinstance(build, str) else build.get("context", "."))
        assert context.is_dir(), f"{name}: build context {context} missing"
        dockerfile = context / (
            build.get("dockerfile", "Dockerfile") if isinstance(build, dict) else "Dockerfile"
        )
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        assert "FROM apache/airflow:3.3.2-python3.11" in dockerfile.read_text()


def test_bind_mount_sources_exist_and_named_volumes_are_declared(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    declared = set(compose.get("volumes") or {})
    for name, service in services.items():
        for source, _target in bind_mounts(service):
            assert (REPO / source).resolve().exists(), f"{name}: volume source {source} missing"
        for volume in service.get("volumes") or []:
            source = volume.get("source", "") if isinstance(volume, dict) else str(volume).split(":")[0]
            if not source.startswith((".", "/")):
                assert source in declared, f"{name}: named volume {source} not declared"


def test_dags_folder_is_the_repository_dags_directory(services: dict[str, Any]) -> None:
    for name, service in services.items():
        if not is_airflow_service(service):
            continue
        folder = environment(service).get("AIRFLOW__CORE__DAGS_FOLDER", CONTAINER_DAGS_FOLDER)
        sources = [source for source, target in bind_mounts(service) if target == folder]
        assert sources, f"{name}: nothing mounted at the DAGs folder {folder}"
        assert [(REPO / s).resolve() for s in sources] == [(REPO / "dags").resolve()], name


def test_connections_parse_as_json_with_known_types(common_env: dict[str, str]) -> None:
    connections = {k: json.loads(v) for k, v in common_env.items() if k.startswith("AIRFLOW_CONN_")}
    assert {k: c["conn_type"] for k, c in connections.items()} == {
        "AIRFLOW_CONN_AMC_DEFAULT": "amc",
        "AIRFLOW_CONN_POSTGRES_DEFAULT": "postgres",
    }
    postgres = connections["AIRFLOW_CONN_POSTGRES_DEFAULT"]
    assert postgres["host"] == "postgres"


def test_amc_connection_uses_the_emulator_identities(
    common_env: dict[str, str], services: dict[str, Any]
) -> None:
    amc = json.loads(common_env["AIRFLOW_CONN_AMC_DEFAULT"])
    port = parse_emulator_args(service_argv(services["amc-emulator"])[3:]).port
    assert amc["host"] == f"http://amc-emulator:{port}"
    assert amc["login"] == defaults.DEFAULT_CLIENT_ID
    assert amc["password"] == defaults.DEFAULT_CLIENT_SECRET
    assert amc["extra"] == {
        "refresh_token": defaults.DEFAULT_REFRESH_TOKEN,
        "advertiser_id": defaults.DEFAULT_ADVERTISER_ID,
        "marketplace_id": defaults.DEFAULT_MARKETPLACE_ID,
        "instance_id": defaults.DEFAULT_INSTANCE_ID,
        "token_url": f"http://amc-emulator:{port}/auth/o2/token",
    }


def test_depends_on_names_existing_services(services: dict[str, Any]) -> None:
    for name, service in services.items():
        for dependency in depends_on(service):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
            assert dependency != name


def test_init_service_creates_the_amc_pool(services: dict[str, Any], common_env: dict[str, str]) -> None:
    invocations = airflow_invocations(service_argv(services["airflow-init"]))
    assert ["db", "migrate"] in invocations
    pools = [argv for argv in invocations if argv[:2] == ["pools", "set"]]
    instance = json.loads(common_env["AIRFLOW_CONN_AMC_DEFAULT"])["extra"]["instance_id"]
    assert f"amc_{instance}" in {argv[2] for argv in pools}  # the connection's instance
    for argv in pools:  # one per AMC instance: AMC's 10 concurrent runs, deferred waits included
        assert re.fullmatch(r"amc_[A-Za-z0-9]+", argv[2]) and int(argv[3]) == 10, argv
        assert "--include-deferred" in argv, argv


def test_init_creates_every_pool_the_example_dags_use(
    services: dict[str, Any], airflow_probe: dict[str, Any]
) -> None:
    """A task in a pool that does not exist never runs: every pool of every DAG in dags/ (the
    fan-out DAG's one per emulator instance included) is created by airflow-init, and no other."""
    invocations = airflow_invocations(service_argv(services["airflow-init"]))
    created = {argv[2] for argv in invocations if argv[:2] == ["pools", "set"]}
    used = set(airflow_probe["pools"].values()) - {"default_pool"}
    assert EXAMPLE_POOL in used and "amc_amcdemo0002" in used, airflow_probe["pools"]
    assert created == used, airflow_probe["pools"]


# ---------------------------------------------------------------------------------------- celery profile


def test_the_default_setup_is_local_and_the_celery_profile_is_opt_in(
    compose: dict[str, Any], services: dict[str, Any]
) -> None:
    profiled = {name for name, service in services.items() if service.get("profiles")}
    assert profiled == CELERY_PROFILE
    assert all(services[name]["profiles"] == ["celery"] for name in CELERY_PROFILE)
    raw = compose["x-airflow-common"]["environment"]["AIRFLOW__CORE__EXECUTOR"]
    assert raw == "${AIRFLOW_EXECUTOR:-LocalExecutor}"  # the profile's runs set AIRFLOW_EXECUTOR
    assert "AIRFLOW_EXECUTOR=CeleryExecutor docker compose --profile celery up" in COMPOSE_FILE.read_text()


def test_celery_profile_runs_workers_on_redis_and_a_second_triggerer(
    services: dict[str, Any], common_env: dict[str, str]
) -> None:
    assert airflow_invocations(service_argv(services["airflow-worker"])) == [["celery", "worker"]]
    assert airflow_invocations(service_argv(services["airflow-triggerer-2"])) == [["triggerer"]]
    assert with_defaults(str(services["airflow-worker"]["deploy"]["replicas"])) == "2"
    broker = common_env["AIRFLOW__CELERY__BROKER_URL"]
    redis_port = "6379"
    assert broker == f"redis://redis:{redis_port}/0"
    assert common_env["AIRFLOW__CELERY__RESULT_BACKEND"].startswith("db+postgresql://")
    assert "@postgres:5432/" in common_env["AIRFLOW__CELERY__RESULT_BACKEND"]
    assert services["airflow-worker"]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert "healthcheck" in services["redis"]
    for name in ("airflow-worker", "airflow-triggerer-2"):  # same image and settings as the rest
        assert environment(services[name]) == common_env
        assert services[name]["depends_on"]["airflow-init"] == {"condition": "service_completed_successfully"}
