"""A tiny keep-alive HTTP/1.1 file server for the streaming benchmark (``GET`` only, ``sendfile``).

Serves ``<root>/<path>`` for ``GET /<path>?<query>`` (the query, e.g. a pre-signed URL's
signature, is ignored), so result parts can be served at the emulator's URL shape
``/downloads/{instanceId}/{executionId}/part-NNNNN.csv`` without the emulator's CSV generation
capping the measurement. Usage: ``python bench/static_server.py ROOT`` (prints its URL).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit


def handler(root: Path):  # type: ignore[no-untyped-def]
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b"\r\n", 1)[0].decode().split(" ", 2)
                path = (root / unquote(urlsplit(target).path).lstrip("/")).resolve()
                if method != "GET" or root not in path.parents or not path.is_file():
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    await writer.drain()
                    continue
                size = path.stat().st_size
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/csv\r\n"
                    + f"Content-Length: {size}\r\n\r\n".encode()
                )
                await writer.drain()
                with path.open("rb") as handle:
                    await loop.sendfile(writer.transport, handle)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    return serve


async def main(root: Path) -> None:
    server = await asyncio.start_server(handler(root.resolve()), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    print(f"static server listening on http://127.0.0.1:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
