"""Running the app under uvicorn on a pre-bound socket (so ``port=0`` works and is known)."""

from __future__ import annotations

import socket

import uvicorn

from airflow_provider_amc.emulator.app import create_app
from airflow_provider_amc.emulator.state import EmulatorState
from airflow_provider_amc.emulator.tls import TlsFiles


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(
    state: EmulatorState, log_level: str = "warning", tls: TlsFiles | None = None
) -> uvicorn.Server:
    """A uvicorn server for the app; HTTPS with ``tls`` (then every URL it issues is https://)."""
    config = uvicorn.Config(
        create_app(state),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=30,
        ssl_certfile=tls.certfile if tls else None,
        ssl_keyfile=tls.keyfile if tls else None,
    )
    return _Server(config)


class _Server(uvicorn.Server):
    """uvicorn's server, stopping promptly over TLS too."""

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        # A client's idle pooled TLS connection never answers the close_notify that a graceful
        # close sends, so stopping would wait for asyncio's 30 s SSL shutdown timeout: abort the
        # idle ones (as uvicorn closes them), let busy ones finish.
        if self.config.is_ssl:
            for connection in list(self.server_state.connections):
                cycle = getattr(connection, "cycle", None)
                transport = getattr(connection, "transport", None)
                if transport is not None and (cycle is None or cycle.response_complete):
                    transport.abort()
        await super().shutdown(sockets)


def base_url(sock: socket.socket, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"
