"""A total deadline for each synchronous HTTP attempt (requests only bounds each socket read).

``requests``' ``timeout`` is per read: a server that sends one byte just before every read
timeout keeps a call alive for ever. :class:`Deadline` arms a timer; the connections urllib3 uses
while it is armed are recorded (through the connection classes of :class:`DeadlineAdapter`),
and when the timer fires their sockets are shut down, which ends the blocked read at once. The
async client gets the same bound from aiohttp's ``ClientTimeout(total=...)``.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool


class _Current(threading.local):
    deadline: Deadline | None = None


_CURRENT = _Current()


class Deadline:
    """``with Deadline(seconds) as d:`` — sockets used inside are shut down after ``seconds``.

    ``d.expired`` tells the caller that a failure was the deadline. ``connections`` carries the
    watched connections over to a later deadline (each chunk of a streamed download).
    """

    def __init__(self, seconds: float, connections: list[Any] | None = None) -> None:
        self.seconds = seconds
        self.connections: list[Any] = list(connections or [])
        self.expired = False
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._previous: Deadline | None = None

    def __enter__(self) -> Deadline:
        self._previous, _CURRENT.deadline = _CURRENT.deadline, self
        self._timer = threading.Timer(self.seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        _CURRENT.deadline = self._previous

    def watch(self, connection: Any) -> None:
        with self._lock:
            self.connections.append(connection)
            expired = self.expired
        if expired:
            _shut(connection)

    def _fire(self) -> None:
        with self._lock:
            self.expired = True
            connections = list(self.connections)
        for connection in connections:
            _shut(connection)


def _shut(connection: Any) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _Watched:
    """Mixin for urllib3 connections: register with the thread's current deadline per request."""

    def request(self, *args: Any, **kwargs: Any) -> Any:
        deadline = _CURRENT.deadline
        if deadline is not None:
            deadline.watch(self)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_POOLS: dict[str, type[HTTPConnectionPool]] = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """A requests adapter whose connections (direct or through a proxy) obey :class:`Deadline`."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
