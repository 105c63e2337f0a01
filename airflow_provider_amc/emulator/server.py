"""Running the app under uvicorn on a pre-bound socket (so ``port=0`` works and is known)."""

from __future__ import annotations

import socket

import uvicorn

from airflow_provider_amc.emulator.app import create_app
from airflow_provider_amc.emulator.state import EmulatorState


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def build_server(state: EmulatorState, log_level: str = "warning") -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(state),
        log_level=log_level,
        access_log=False,
        lifespan="off",
        backlog=2048,
        timeout_keep_alive=30,
    )
    return uvicorn.Server(config)


def base_url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
