"""Test helpers: :class:`EmulatorServer` (uvicorn in a background thread) and :class:`AdminClient`."""

from __future__ import annotations

import re
import tempfile
import threading
from datetime import datetime
from types import TracebackType
from typing import Any

import requests

from airflow_provider_amc.emulator import defaults
from airflow_provider_amc.emulator.config import EmulatorConfig
from airflow_provider_amc.emulator.server import base_url, bind, build_server
from airflow_provider_amc.emulator.state import EmulatorState
from airflow_provider_amc.emulator.tls import TlsFiles, generate, server_names


def matching(entries: list[dict[str, Any]], method: str, path_regex: str) -> list[dict[str, Any]]:
    """Request-log entries whose method matches (``*`` = any) and whose path matches the regex."""
    pattern = re.compile(path_regex)
    return [entry for entry in entries if method in ("*", entry["method"]) and pattern.search(entry["path"])]


class AdminClient:
    """Thin ``requests`` wrapper over the ``/emulator/`` admin API (one method per route)."""

    def __init__(self, url: str, timeout: float = 30.0, ca_file: str | None = None) -> None:
        self.url = url.rstrip("/") + "/emulator"
        self.timeout = timeout
        self._session = requests.Session()
        # Per request: a session-level verify loses to REQUESTS_CA_BUNDLE in requests.
        self._verify: str | bool = ca_file or True

    def _call(self, method: str, path: str, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        response = self._session.request(
            method, self.url + path, json=json, params=params, timeout=self.timeout, verify=self._verify
        )
        if response.status_code >= 400:
            raise RuntimeError(f"emulator admin {method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def reset(self, seed: int | None = None, clear_tokens: bool = False) -> Any:
        return self._call("POST", "/reset", {"seed": seed, "clear_tokens": clear_tokens})

    def requests(self, since: int = 0) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/requests", params={"since": since})["requests"]
        return result

    def clear_requests(self) -> Any:
        return self._call("DELETE", "/requests")

    def count(self, method: str = "*", path_regex: str = ".*", since: int = 0) -> int:
        """How many logged requests match ``method`` ('*' = any) and ``path_regex`` (searched)."""
        return len(matching(self.requests(since), method, path_regex))

    def clock(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/clock")
        return result

    def now(self) -> datetime:
        return datetime.fromisoformat(self.clock()["now"].replace("Z", "+00:00"))

    def advance(self, seconds: float) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/clock/advance", {"seconds": seconds})
        return result

    def set_speed(self, speed: float) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/clock/speed", {"speed": speed})
        return result

    def script(self, workflow_id: str, **fields: Any) -> dict[str, Any]:
        """Script executions of ``workflow_id`` ('*' = every workflow), e.g. ``outcome="FAILED"``."""
        result: dict[str, Any] = self._call("PUT", f"/scripts/{workflow_id}", fields)
        return result

    def clear_script(self, workflow_id: str) -> Any:
        return self._call("DELETE", f"/scripts/{workflow_id}")

    def fault(self, kind: str, *, method: str = "*", path: str = ".*", count: int = 1, **fields: Any) -> Any:
        """Add a fault rule; ``fields``: ``status``, ``retry_after``, ``delay_seconds``."""
        return self._call(
            "POST", "/faults", {"kind": kind, "method": method, "path": path, "count": count, **fields}
        )

    def faults(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/faults")["faults"]
        return result

    def clear_faults(self) -> Any:
        return self._call("DELETE", "/faults")

    def throttle(self, rate: float, burst: int, path: str = "^/amc/") -> Any:
        return self._call("PUT", "/throttle", {"rate": rate, "burst": burst, "path": path})

    def clear_throttle(self) -> Any:
        return self._call("DELETE", "/throttle")

    def expire_tokens(self, status: int | None = None) -> Any:
        return self._call("POST", "/tokens/expire", {"status": status})

    def config(self, **switches: Any) -> dict[str, Any]:
        """Change config switches (no arguments: just read the config)."""
        result: dict[str, Any] = (
            self._call("PUT", "/config", switches) if switches else self._call("GET", "/config")
        )
        return result

    def execution(self, instance_id: str, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/executions/{instance_id}/{execution_id}")
        return result

    def result_summary(self, instance_id: str, execution_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/executions/{instance_id}/{execution_id}/result-summary")
        return result

    def close(self) -> None:
        self._session.close()


class EmulatorRequestLog:
    """The emulator's request log, as a test reads it (every non-admin request, secrets masked).

    Each entry: ``seq``, emulator ``time``, ``method``, ``path``, ``query``, ``status``, header
    names, the AMC identity header values and the JSON/form ``body`` of POST/PUT requests.
    """

    def __init__(self, admin: AdminClient) -> None:
        self._admin = admin

    def entries(self, method: str = "*", path_regex: str = ".*") -> list[dict[str, Any]]:
        """Logged requests whose method matches (``*`` = any) and whose path matches the regex."""
        return matching(self._admin.requests(), method, path_regex)

    def count(self, method: str = "*", path_regex: str = ".*") -> int:
        return len(self.entries(method, path_regex))

    def bodies(self, method: str = "POST", path_regex: str = ".*") -> list[Any]:
        """The request bodies of the matching requests, in order."""
        return [entry["body"] for entry in self.entries(method, path_regex)]

    def clear(self) -> None:
        self._admin.clear_requests()


class EmulatorServer:
    """Run the emulator in a background thread on a free port::

    with EmulatorServer(speed=10) as server:
        requests.post(server.url + "/auth/o2/token", data={...})
        server.admin.advance(60)

    ``seed=None`` (default): execution ids and tokens are new on every start; give a seed to make
    them repeat. ``tls=True`` serves HTTPS with a certificate from a CA generated for this server
    (``tls=TlsFiles.given(...)`` uses yours); :attr:`ca_file` is then the CA file clients must
    trust and :attr:`url` starts with ``https://``. ``scaled_lifetimes=True`` measures token and
    download-URL lifetimes on the emulated clock (for tests of expiry; default: wall clock).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int | None = None,
        speed: float = 1.0,
        state: EmulatorState | None = None,
        tls: bool | TlsFiles = False,
        scaled_lifetimes: bool = False,
        log_level: str = "warning",
        start_timeout: float = 10.0,
    ) -> None:
        config = EmulatorConfig(scaled_lifetimes=scaled_lifetimes)
        self.state = state or EmulatorState(seed=seed, speed=speed, config=config)
        self._host, self._port, self._log_level, self._start_timeout = host, port, log_level, start_timeout
        self._tls_request = tls
        self._tls_dir: tempfile.TemporaryDirectory[str] | None = None
        self.tls: TlsFiles | None = None
        self._thread: threading.Thread | None = None
        self._server: Any = None
        self.url = ""
        self._admin: AdminClient | None = None

    @property
    def ca_file(self) -> str | None:
        """The CA file (PEM) that verifies this server's certificate; None when serving HTTP."""
        return self.tls.ca_file if self.tls else None

    def connection(self, instance_id: str | None = defaults.DEFAULT_INSTANCE_ID) -> dict[str, Any]:
        """An ``amc`` Airflow connection (JSON form) to this server with the seeded identities
        (with ``verify`` = :attr:`ca_file` over HTTPS)."""
        return defaults.airflow_connection(self.url, instance_id, verify=self.ca_file)

    def _tls_files(self) -> TlsFiles | None:
        if isinstance(self._tls_request, TlsFiles):
            return self._tls_request
        if not self._tls_request:
            return None
        self._tls_dir = tempfile.TemporaryDirectory(prefix="amc-emulator-tls-")
        return generate(self._tls_dir.name, server_names(self._host))

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("EmulatorServer is not started")
        return self._admin

    def start(self) -> EmulatorServer:
        if self._thread is not None:
            return self
        self.tls = self._tls_files()
        sock = bind(self._host, self._port)
        self._server = build_server(self.state, self._log_level, self.tls)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="amc-emulator", daemon=True
        )
        self._thread.start()
        ready = threading.Event()
        deadline = self._start_timeout
        while not self._server.started and self._thread.is_alive() and deadline > 0:
            ready.wait(0.02)
            deadline -= 0.02
        if not self._server.started:
            self.stop()
            raise RuntimeError("the AMC emulator did not start")
        self.url = base_url(sock, self.tls is not None)
        self._admin = AdminClient(self.url, ca_file=self.ca_file)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._admin is not None:
            self._admin.close()
        self._thread = None
        if self._tls_dir is not None:
            self._tls_dir.cleanup()
            self._tls_dir = None

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
