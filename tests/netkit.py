"""Network parts for tests: a private CA, a TLS front for the emulator, a forward proxy and
servers that misbehave in time (trickle, silence). All real sockets on 127.0.0.1, no mocks."""

from __future__ import annotations

import select
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from airflow_provider_amc.emulator.tls import generate


# ---- a private certificate authority ---------------------------------------------------------------
def make_private_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca, cert, key) paths
    (the emulator's own ``--tls`` generator)."""
    files = generate(directory, ["localhost", "127.0.0.1"])
    return Path(files.ca_file), Path(files.certfile), Path(files.keyfile)


# ---- plumbing ------------------------------------------------------------------------------------------
def _pipe(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways until one side closes."""
    sockets = [a, b]
    try:
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                (b if sock is a else a).sendall(data)
    except OSError:
        return


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _Background:
    """A socketserver in a thread on a free port of 127.0.0.1 (``with``-managed)."""

    handler: type[socketserver.BaseRequestHandler]

    def __init__(self) -> None:
        owner = self

        class Handler(self.handler):  # type: ignore[name-defined,misc]
            server_owner = owner

        self._server = _Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()


def _read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        part = sock.recv(65536)
        if not part:
            break
        data += part
    return data


# ---- a forward proxy ---------------------------------------------------------------------------------
class _ProxyHandler(socketserver.BaseRequestHandler):
    server_owner: ForwardProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        data = _read_head(client)
        head, _, rest = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        self.server_owner.seen.append(f"{method} {target}")
        self.server_owner.headers.append(
            {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
        )
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            upstream = socket.create_connection((host, int(port)), timeout=10)
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            _pipe(client, upstream)
            upstream.close()
            return
        # absolute-form: forward as origin-form, one request per connection
        from urllib.parse import urlsplit

        url = urlsplit(target)
        kept = [
            h
            for h in lines[1:]
            if h.split(":", 1)[0].lower()
            not in ("connection", "proxy-connection", "proxy-authorization", "keep-alive")
        ]
        path = url.path + (f"?{url.query}" if url.query else "")
        new_head = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close"]) + "\r\n\r\n"
        upstream = socket.create_connection((url.hostname, url.port or 80), timeout=10)
        upstream.sendall(new_head.encode("latin-1") + rest)
        _pipe(client, upstream)
        upstream.close()


class ForwardProxy(_Background):
    """An HTTP forward proxy (absolute-form requests and CONNECT); ``seen`` lists each request line."""

    handler = _ProxyHandler

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.headers: list[dict[str, str]] = []
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


# ---- a TLS front for a plain HTTP server -----------------------------------------------------------
class _TlsHandler(socketserver.BaseRequestHandler):
    server_owner: TlsFront

    def handle(self) -> None:
        owner = self.server_owner
        try:
            client = owner.context.wrap_socket(self.request, server_side=True)
        except (ssl.SSLError, OSError) as exc:
            owner.handshake_errors.append(str(exc))
            return
        upstream = socket.create_connection(owner.upstream, timeout=10)
        _pipe(client, upstream)
        upstream.close()
        client.close()


class TlsFront(_Background):
    """Serve HTTPS on a free port with ``cert``/``key`` and forward the plain bytes to ``upstream``."""

    handler = _TlsHandler

    def __init__(self, upstream: tuple[str, int], cert: Path, key: Path) -> None:
        self.upstream = upstream
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(cert, key)
        self.handshake_errors: list[str] = []
        super().__init__()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


# ---- servers that misbehave in time ------------------------------------------------------------------
class _SlowHandler(socketserver.BaseRequestHandler):
    server_owner: SlowServer

    def handle(self) -> None:
        owner = self.server_owner
        sock: socket.socket = self.request
        _read_head(sock)
        owner.hits += 1
        owner.behave(sock)


class SlowServer(_Background):
    """Answers every request with ``behave(socket)`` (trickle bytes, stay silent...)."""

    handler = _SlowHandler

    def __init__(self, behave: Callable[[socket.socket], Any]) -> None:
        self.behave = behave
        self.hits = 0
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def trickle(interval: float, total: float = 120.0, head: bool = False) -> Callable[[socket.socket], None]:
    """Send one byte every ``interval`` seconds (of the status line when ``head``, else of a body
    announced as 1 MB) for up to ``total`` seconds, then close."""

    def behave(sock: socket.socket) -> None:
        payload = b"HTTP/1.1 200 OK\r\n" if head else b""
        if not head:
            sock.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
            )
            payload = b"{" + b" " * 1000
        end = time.monotonic() + total
        for byte in payload:
            if time.monotonic() > end:
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(interval)

    return behave


def silent(total: float = 120.0) -> Callable[[socket.socket], None]:
    """Accept the request and never answer (until ``total`` seconds or the client hangs up)."""

    def behave(sock: socket.socket) -> None:
        sock.settimeout(total)
        try:
            while sock.recv(65536):  # read (a request body) and never answer
                pass
        except OSError:
            return

    return behave


def canned(
    status: int, body: bytes, content_type: str = "application/json"
) -> Callable[[socket.socket], None]:
    """Answer every request with this one HTTP response (a scripted, possibly hostile, AMC)."""

    def behave(sock: socket.socket) -> None:
        head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        sock.sendall(head.encode() + b"Connection: close\r\n\r\n" + body)

    return behave


class _ScriptedHandler(socketserver.BaseRequestHandler):
    server_owner: ScriptedServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        data = _read_head(sock)
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            part = sock.recv(65536)
            if not part:
                break
            body += part
        self.server_owner.requests.append((head, body))
        sock.sendall(self.server_owner.respond(head, body))


class ScriptedServer(_Background):
    """Answers each request with ``respond(head, body)`` (raw HTTP bytes): an echoing token
    endpoint, an HTML error page, a truncated answer..."""

    handler = _ScriptedHandler

    def __init__(self, respond: Callable[[bytes, bytes], bytes]) -> None:
        self.respond = respond
        self.requests: list[tuple[bytes, bytes]] = []
        super().__init__()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def http_answer(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"Connection: close\r\n\r\n" + body
