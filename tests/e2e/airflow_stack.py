"""Run a real Airflow 3.3 deployment (api-server, scheduler, dag-processor, triggerer) for e2e tests.

``AirflowStack`` starts the four Airflow services from this virtualenv as subprocesses, each in its
own process group, against a fresh PostgreSQL metadata database (created on ``127.0.0.1:5432``
with trust auth and dropped at teardown), with the LocalExecutor, a temporary ``AIRFLOW_HOME`` and
settings tuned so a test run is quick on a 2-core machine::

    with AirflowStack(dags_folder, env={"AIRFLOW_CONN_AMC_DEFAULT": ...}, expect_dags=["d"]) as stack:
        stack.unpause("d")
        run_id = stack.trigger_dag("d", conf={"x": 1})
        assert stack.wait_for_run("d", run_id) == "success"

REST calls go to the public ``/api/v2`` API. Authentication: the Simple auth manager runs with
``[core] simple_auth_manager_all_admins = True``, so the api-server treats every request as an
admin; the stack still fetches a bearer token from ``GET /auth/token`` (the endpoint that mode
provides) and sends it, so the calls look like any authenticated client's.

Deferral evidence (``deferral_evidence``): ``task_instance.next_method`` is cleared when a resumed
task finishes and the ``trigger`` row is deleted, so neither shows a deferral afterwards. Two
records do survive and are read back through the REST API: the audit log (``/eventLogs``), where
the task instance's state changes appear in order (``running``, ``deferred``, ``running``,
``success``), and the task's log, into which the triggerer writes its ``trigger ... starting``,
``Trigger fired event`` and ``trigger completed`` lines (stored in a separate
``attempt=N.log.trigger.<triggerer job id>.log`` file that the API merges into the task log). The
triggerer's own process log (``stack.log_path("triggerer")``) only has start/stop lines.

Teardown sends SIGTERM to every service's process group, SIGKILL after a grace period, and then
sweeps any process that still carries this stack's marker environment variable (LocalExecutor
task processes move to their own process groups, so killing the groups alone is not enough).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil
import psycopg
import requests
from psycopg import sql

PG_ADMIN_DSN = os.environ.get("AIRFLOW_E2E_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
"""libpq DSN of the maintenance database used to create and drop the per-stack metadata database."""

SERVICES: tuple[str, ...] = ("api-server", "scheduler", "dag-processor", "triggerer")
TERMINAL_RUN_STATES = frozenset({"success", "failed"})
MARKER_ENV = "AIRFLOW_E2E_STACK_ID"
_VENV_BIN = Path(sys.executable).parent
_T = TypeVar("_T")


class AirflowStackError(RuntimeError):
    """The stack could not start, or a service died, or something did not happen in time."""


class AirflowApiError(AirflowStackError):
    """A REST call answered with an unexpected status; ``response`` is the HTTP response."""

    def __init__(self, message: str, response: requests.Response) -> None:
        super().__init__(f"{message}: HTTP {response.status_code} {response.text[:500]}")
        self.response = response


@dataclass
class StackTimings:
    """Wall-clock seconds spent in each phase (printed by the fixture, useful for CI budgets)."""

    create_db: float = 0.0
    migrate: float = 0.0
    services_ready: float = 0.0
    dags_parsed: float = 0.0
    teardown: float = 0.0

    @property
    def startup(self) -> float:
        return self.create_db + self.migrate + self.services_ready + self.dags_parsed

    def summary(self) -> str:
        return (
            f"start-up {self.startup:.1f}s (create db {self.create_db:.1f}s, db migrate {self.migrate:.1f}s, "
            f"services ready {self.services_ready:.1f}s, dags parsed {self.dags_parsed:.1f}s), "
            f"teardown {self.teardown:.1f}s"
        )


@dataclass(frozen=True)
class DeferralEvidence:
    """What shows that a task instance was deferred and that the triggerer ran its trigger."""

    events: tuple[str, ...]
    """The task instance's audit-log events, oldest first (e.g. running, deferred, running, success)."""
    trigger_log_lines: tuple[str, ...]
    """Lines of the task log written by the triggerer (trigger start, fired event, completion)."""

    @property
    def deferred(self) -> bool:
        return "deferred" in self.events

    @property
    def trigger_started(self) -> bool:
        """The triggerer wrote its ``trigger ... starting`` line into this task's log."""
        return any(line.startswith("trigger ") and "starting" in line for line in self.trigger_log_lines)

    @property
    def trigger_fired(self) -> bool:
        return any(line.startswith("Trigger fired event") for line in self.trigger_log_lines)

    @property
    def trigger_completed(self) -> bool:
        return "trigger completed" in self.trigger_log_lines


@dataclass(frozen=True)
class StackSpec:
    """How a test module wants its stack (read by the ``airflow_stack`` fixture in conftest.py).

    ``env`` is either a mapping or a function that receives pytest's ``getfixturevalue`` (so the
    environment can use other fixtures, e.g. the emulator's URL) and returns the mapping.
    """

    dags_folder: Path
    expect_dags: tuple[str, ...] = ()
    env: Mapping[str, str] | Callable[[Callable[[str], Any]], Mapping[str, str]] = field(default_factory=dict)
    pools: Mapping[str, int] = field(default_factory=dict)
    """Pools to create before the tests (name -> slots; they count deferred tasks)."""


@contextlib.contextmanager
def scratch_database(prefix: str) -> Iterator[str]:
    """A new, uniquely named Postgres database on the admin server; dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def poll(check: Callable[[], _T | None], *, timeout: float, interval: float, what: str) -> _T:
    """Call ``check`` until it returns something other than ``None``; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            raise AirflowStackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


class AirflowStack:
    """A running Airflow 3.3 deployment for one test module; use it as a context manager."""

    def __init__(
        self,
        dags_folder: Path | str,
        *,
        env: Mapping[str, str] | None = None,
        expect_dags: Iterable[str] = (),
        parallelism: int = 4,
        services: Iterable[str] = SERVICES,
        startup_timeout: float = 180.0,
        grace_period: float = 10.0,
        keep_home: bool = False,
    ) -> None:
        unknown = set(services) - set(SERVICES)
        if unknown:
            raise ValueError(f"services: unknown {sorted(unknown)}; allowed values are {list(SERVICES)}")
        if "api-server" not in services:
            raise ValueError(
                "services: 'api-server' is required (readiness and every helper use the REST API)"
            )
        if parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {parallelism}")
        self.dags_folder = Path(dags_folder).resolve()
        if not self.dags_folder.is_dir():
            raise ValueError(f"dags_folder {self.dags_folder} is not a directory")
        self.expect_dags = tuple(expect_dags)
        self.services = tuple(services)
        self.startup_timeout = startup_timeout
        self.grace_period = grace_period
        self.keep_home = keep_home
        self.stack_id = secrets.token_hex(4)
        self.db_name = f"airflow_e2e_{self.stack_id}"
        self.db_url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.db_name}"
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}"
        self.home = Path(tempfile.mkdtemp(prefix=f"airflow-e2e-{self.stack_id}-"))
        self.timings = StackTimings()
        self.env = self._build_env(parallelism, env or {})
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._session = requests.Session()
        self._db_created = False
        self.swept = 0
        """How many processes teardown had to kill after their process groups were signalled."""
        self.killed_services: list[str] = []
        """Services that did not exit within ``grace_period`` of SIGTERM and were SIGKILLed."""

    # ------------------------------------------------------------------ environment

    def _build_env(self, parallelism: int, extra: Mapping[str, str]) -> dict[str, str]:
        from cryptography.fernet import Fernet

        # Start from the caller's environment minus any Airflow settings the test process may carry.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_", "AIRFLOW__"))}
        settings = {
            "AIRFLOW_HOME": str(self.home),
            MARKER_ENV: self.stack_id,
            "PATH": f"{_VENV_BIN}{os.pathsep}{base.get('PATH', '')}",
            "PYTHONUNBUFFERED": "1",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.db_url,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": str(parallelism),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            # Quick loops: the defaults are tuned for production, not for a 2-minute test.
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.5",
            "AIRFLOW__SCHEDULER__TRIGGER_TIMEOUT_CHECK_INTERVAL": "2",
            "AIRFLOW__SCHEDULER__POOL_METRICS_INTERVAL": "30",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
            "AIRFLOW__DAG_PROCESSOR__BUNDLE_REFRESH_CHECK_INTERVAL": "2",
            "AIRFLOW__DAG_PROCESSOR__PRINT_STATS_INTERVAL": "600",
            # The task supervisor notices its deferred child has exited only after a select() timeout of
            # min_heartbeat_interval (default 5 s). If the trigger fires and the task is resumed before
            # that, the scheduler sees the late "success" of the deferred try while the resumed try is
            # running and fails it ("finished with state success, but ... state attribute is running").
            "AIRFLOW__WORKERS__MIN_HEARTBEAT_INTERVAL": "1",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
        return {**base, **settings, **extra}

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> AirflowStack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        """Create the database, migrate it, start the services and wait for them and the DAGs."""
        started = time.monotonic()
        self._create_database()
        self.timings.create_db = time.monotonic() - started

        started = time.monotonic()
        self.cli("db", "migrate", timeout=self.startup_timeout)
        self.timings.migrate = time.monotonic() - started

        started = time.monotonic()
        self.stack_logs_dir.mkdir(parents=True, exist_ok=True)
        for service in self.services:
            self._spawn(service)
        self._wait_healthy()
        self.timings.services_ready = time.monotonic() - started

        started = time.monotonic()
        self.wait_for_dags(self.expect_dags, timeout=self.startup_timeout)
        self.timings.dags_parsed = time.monotonic() - started

    def stop(self) -> None:
        """Stop every service and its children, drop the database, remove the home (idempotent)."""
        started = time.monotonic()
        self._session.close()
        self._terminate_services()
        self._kill_stragglers()
        self._drop_database()
        if not self.keep_home:
            shutil.rmtree(self.home, ignore_errors=True)
        self.timings.teardown = time.monotonic() - started

    @property
    def stack_logs_dir(self) -> Path:
        return self.home / "stack-logs"

    def log_path(self, service: str) -> Path:
        """The file that receives the stdout and stderr of ``service`` (e.g. ``"triggerer"``), or of
        an extra process started with :meth:`start_process`."""
        if service not in SERVICES and service not in self._procs:
            raise ValueError(f"service: unknown {service!r}; allowed values are {list(SERVICES)}")
        return self.stack_logs_dir / f"{service}.log"

    def start_process(self, name: str, *args: str, banner: str = "") -> subprocess.Popen[bytes]:
        """Start ``airflow <args>`` as a named process of this stack (a second triggerer, a Celery
        worker, a service again after :meth:`kill_process` …): same environment, its own process
        group, output appended to ``<name>.log`` (after ``banner``, if given), watched by the
        liveness checks and stopped by the teardown like the services."""
        if name in self._procs:
            raise ValueError(f"name {name!r} is already used by a running process of this stack")
        with (self.stack_logs_dir / f"{name}.log").open("ab") as log:
            if banner:
                log.write(f"\n{banner}\n".encode())
                log.flush()
            proc = subprocess.Popen(
                [str(_VENV_BIN / "airflow"), *args],
                env=self.env,
                cwd=self.home,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own session => own process group
            )
        self._procs[name] = proc
        return proc

    def kill_process(self, name: str) -> int:
        """SIGKILL a service or extra process, its group and every descendant (``kill -9``, no grace);
        it leaves the liveness checks. Returns its pid."""
        proc = self._procs.pop(name)
        descendants = psutil.Process(proc.pid).children(recursive=True) if proc.poll() is None else []
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        for child in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                child.kill()
        proc.wait(timeout=10)
        psutil.wait_procs(descendants, timeout=10)
        return proc.pid

    def read_log(self, service: str) -> str:
        path = self.log_path(service)
        return path.read_text(errors="replace") if path.exists() else ""

    def _spawn(self, service: str) -> None:
        args = [service]
        if service == "api-server":
            args += ["--host", "127.0.0.1", "--port", str(self.port), "--workers", "1"]
        self.start_process(service, *args)

    def _check_alive(self) -> None:
        for service, proc in self._procs.items():
            if proc.poll() is not None:
                tail = self.read_log(service)[-3000:]
                raise AirflowStackError(f"{service} exited with code {proc.returncode}; log tail:\n{tail}")

    def _wait_healthy(self) -> None:
        wanted = {"scheduler", "triggerer", "dag-processor"} & set(self.services)
        components = {s: s.replace("-", "_") for s in wanted}

        def healthy() -> bool | None:
            self._check_alive()
            try:
                response = self._session.get(f"{self.api_url}/api/v2/monitor/health", timeout=5)
            except requests.ConnectionError:
                return None
            if response.status_code != 200:
                return None
            body = response.json()
            ok = all(
                body.get(key, {}).get("status") == "healthy" for key in ["metadatabase", *components.values()]
            )
            return True if ok else None

        poll(healthy, timeout=self.startup_timeout, interval=0.5, what="the services to report healthy")
        self._authenticate()

    def _authenticate(self) -> None:
        response = self._session.get(f"{self.api_url}/auth/token", timeout=10)
        if response.status_code not in (200, 201):
            raise AirflowApiError("could not get an API token", response)
        self._session.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _terminate_services(self) -> None:
        for proc in self._procs.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_period
        for service, proc in self._procs.items():
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.killed_services.append(service)
        for proc in self._procs.values():
            # The leader may be gone while others in its group are not: always SIGKILL the group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=5)

    def stray_processes(self) -> list[psutil.Process]:
        """Live processes started by this stack (found by the marker variable in their environment)."""
        found = []
        me = os.getpid()
        for proc in psutil.process_iter(["pid"]):
            if proc.pid == me:
                continue
            try:
                if proc.environ().get(MARKER_ENV) == self.stack_id and proc.status() != psutil.STATUS_ZOMBIE:
                    found.append(proc)
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                continue
        return found

    def _kill_stragglers(self) -> None:
        stragglers = self.stray_processes()
        self.swept += len(stragglers)
        for proc in stragglers:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        psutil.wait_procs(stragglers, timeout=5)

    # ------------------------------------------------------------------ database

    def _create_database(self) -> None:
        try:
            with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.db_name)))
        except psycopg.OperationalError as exc:
            raise AirflowStackError(
                f"PostgreSQL is not reachable at {PG_ADMIN_DSN} (run scripts/ensure_postgres.sh): {exc}"
            ) from exc
        self._db_created = True

    def _drop_database(self) -> None:
        if not self._db_created:
            return
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.db_name))
            )
        self._db_created = False

    def database_exists(self) -> bool:
        with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.db_name,)).fetchone()
        return row is not None

    def sql(
        self, query: str, params: Mapping[str, Any] | tuple[Any, ...] | None = None
    ) -> list[tuple[Any, ...]]:
        """Run a read-only query on the metadata database and return all rows."""
        dsn = self.db_url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(query, params).fetchall()  # type: ignore[arg-type]

    # ------------------------------------------------------------------ CLI

    def cli(self, *args: str, check: bool = True, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """Run ``airflow <args>`` with the stack's environment; raise on a non-zero exit if ``check``."""
        result = subprocess.run(
            [str(_VENV_BIN / "airflow"), *args],
            env=self.env,
            cwd=self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AirflowStackError(
                f"airflow {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
            )
        return result

    # ------------------------------------------------------------------ REST

    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        """Call the public REST API: ``path`` is relative to ``/api/v2`` (e.g. ``"/dags/d"``)."""
        kwargs.setdefault("timeout", 30)
        return self._session.request(method, f"{self.api_url}/api/v2{path}", **kwargs)

    def _json(self, method: str, path: str, what: str, **kwargs: Any) -> Any:
        response = self.api(method, path, **kwargs)
        if not response.ok:
            raise AirflowApiError(what, response)
        return response.json()

    def wait_for_dags(self, dag_ids: Iterable[str], timeout: float = 120.0) -> None:
        """Wait until the dag-processor has serialised every DAG in ``dag_ids``; fail on import errors."""
        pending = set(dag_ids)

        def parsed() -> bool | None:
            self._check_alive()
            errors = self._json("GET", "/importErrors", "list import errors")["import_errors"]
            if errors:
                details = "\n".join(f"{e['filename']}: {e['stack_trace'][-800:]}" for e in errors)
                raise AirflowStackError(f"DAG import errors:\n{details}")
            pending.difference_update(d for d in list(pending) if self.api("GET", f"/dags/{d}").ok)
            return True if not pending else None

        poll(parsed, timeout=timeout, interval=0.5, what=f"DAGs {sorted(pending)} to be parsed")

    def unpause(self, dag_id: str) -> None:
        self._json("PATCH", f"/dags/{dag_id}", f"unpause {dag_id}", json={"is_paused": False})

    def post_dag_run(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, logical_date: str | None = None
    ) -> requests.Response:
        """``POST /dags/{dag_id}/dagRuns`` and return the raw response (for asserting refusals)."""
        body: dict[str, Any] = {"logical_date": logical_date}
        if conf is not None:
            body["conf"] = dict(conf)
        return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)

    def trigger_dag(
        self, dag_id: str, conf: Mapping[str, Any] | None = None, logical_date: str | None = None
    ) -> str:
        """Trigger a run and return its run id; ``AirflowApiError.response`` holds a refusal."""
        response = self.post_dag_run(dag_id, conf, logical_date)
        if response.status_code != 200:
            raise AirflowApiError(f"trigger {dag_id}", response)
        return str(response.json()["dag_run_id"])

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}", f"get run {run_id}"))

    def dag_runs(self, dag_id: str) -> list[dict[str, Any]]:
        """All runs of ``dag_id``, oldest logical date first."""
        body = self._json(
            "GET", f"/dags/{dag_id}/dagRuns", f"list runs of {dag_id}", params={"order_by": "run_after"}
        )
        return list(body["dag_runs"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 120.0) -> str:
        """Wait for the run to reach ``success`` or ``failed`` and return that state."""

        def finished() -> str | None:
            self._check_alive()
            state = str(self.dag_run(dag_id, run_id)["state"])
            return state if state in TERMINAL_RUN_STATES else None

        try:
            return poll(finished, timeout=timeout, interval=1.0, what=f"run {run_id} of {dag_id}")
        except AirflowStackError as exc:
            states = {ti["task_id"]: ti["state"] for ti in self.task_instances(dag_id, run_id)}
            raise AirflowStackError(f"{exc}; task states {states}") from exc

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self._json("GET", f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", "list task instances")
        return list(body["task_instances"])

    def task_instance(self, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}"
        return dict(self._json("GET", path, f"get task instance {task_id}"))

    def task_log(self, dag_id: str, run_id: str, task_id: str, try_number: int = 1) -> str:
        """The task's log for one try as text (worker lines and, for deferred tasks, trigger lines)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}"
        response = self.api("GET", path, headers={"Accept": "application/x-ndjson"})
        if not response.ok:
            raise AirflowApiError(f"get log of {task_id}", response)
        lines = []
        for raw in response.text.splitlines():
            with contextlib.suppress(ValueError):
                record = json.loads(raw)
                lines.append(str(record.get("event", record)) if isinstance(record, dict) else str(record))
                if isinstance(record, dict) and record.get("error_detail"):  # a failed try's exception
                    lines.append(json.dumps(record["error_detail"], default=str)[:3000])
        return "\n".join(lines)

    def xcom(self, dag_id: str, run_id: str, task_id: str, key: str = "return_value") -> Any:
        """The XCom value as stored (JSON-decoded when it is a JSON string)."""
        path = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/{key}"
        value = self._json("GET", path, f"get xcom {task_id}/{key}")["value"]
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return json.loads(value)
        return value

    def task_events(self, dag_id: str, run_id: str, task_id: str) -> list[str]:
        """The task instance's audit-log events (state changes), oldest first."""
        params = {"dag_id": dag_id, "run_id": run_id, "task_id": task_id, "order_by": "id", "limit": 100}
        body = self._json("GET", "/eventLogs", f"list events of {task_id}", params=params)
        return [str(entry["event"]) for entry in body["event_logs"]]

    def trigger_log_files(self, dag_id: str, run_id: str, task_id: str) -> list[Path]:
        """The files the triggerer wrote for this task (``attempt=N.log.trigger.<job id>.log``)."""
        folder = self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
        return sorted(folder.glob("attempt=*.log.trigger.*.log"))

    def deferral_evidence(self, dag_id: str, run_id: str, task_id: str) -> DeferralEvidence:
        """Whether the task instance was deferred and the triggerer ran its trigger (see module doc)."""
        try_number = int(self.task_instance(dag_id, run_id, task_id)["try_number"])
        log = self.task_log(dag_id, run_id, task_id, max(try_number, 1))
        markers = ("trigger ", "Trigger fired event", "trigger completed")
        lines = tuple(line for line in log.splitlines() if line.startswith(markers))
        return DeferralEvidence(
            events=tuple(self.task_events(dag_id, run_id, task_id)), trigger_log_lines=lines
        )

    def set_pool(
        self, name: str, slots: int, description: str = "", *, include_deferred: bool = True
    ) -> None:
        """Create or replace a pool (``include_deferred``: deferred tasks keep their slot)."""
        body = {
            "name": name,
            "slots": slots,
            "description": description,
            "include_deferred": include_deferred,
        }
        response = self.api("PATCH", f"/pools/{name}", json=body)
        if response.status_code == 404:
            response = self.api("POST", "/pools", json=body)
        if not response.ok:
            raise AirflowApiError(f"set pool {name}", response)
