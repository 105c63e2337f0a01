"""``python -m airflow_provider_amc.emulator --host 127.0.0.1 --port 8765 [--speed F] [--seed N]``."""

from __future__ import annotations

import argparse
import asyncio
import sys

from airflow_provider_amc.emulator.server import base_url, bind, build_server
from airflow_provider_amc.emulator.state import EmulatorState


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_amc.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port; 0 picks a free one (default 8765)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="emulator-seconds per real second (default 1)"
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed for ids, tokens and result data (default 0)"
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be > 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    return args


async def _serve(args: argparse.Namespace) -> None:
    sock = bind(args.host, args.port)
    server = build_server(EmulatorState(seed=args.seed, speed=args.speed), args.log_level)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        print(f"AMC emulator listening on {base_url(sock)}", flush=True)

    announcer = asyncio.create_task(announce())
    await server.serve(sockets=[sock])
    announcer.cancel()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
