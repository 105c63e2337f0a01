"""``python -m airflow_provider_amc.emulator --host 127.0.0.1 --port 8765 [--speed F] [--seed N] [--tls]``."""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile

from airflow_provider_amc.emulator.config import EmulatorConfig
from airflow_provider_amc.emulator.server import base_url, bind, build_server
from airflow_provider_amc.emulator.state import EmulatorState
from airflow_provider_amc.emulator.tls import TlsFiles, generate, server_names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m airflow_provider_amc.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="TCP port; 0 picks a free one (default 8765)")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="emulator-seconds per real second (default 1)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed for ids, tokens and result data; without it ids and tokens are new on every start",
    )
    parser.add_argument(
        "--scaled-lifetimes",
        action="store_true",
        help="token and download-URL lifetimes run on the emulated clock (scaled by --speed) instead "
        "of wall-clock seconds",
    )
    tls = parser.add_argument_group("HTTPS")
    tls.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a certificate from a CA generated at start"
    )
    tls.add_argument(
        "--tls-dir", help="where --tls writes ca.pem, server.pem, server-key.pem (default: a temp dir)"
    )
    tls.add_argument("--tls-name", action="append", default=[], help="extra DNS name/IP for the certificate")
    tls.add_argument("--tls-cert", help="serve HTTPS with this PEM certificate (chain) instead")
    tls.add_argument("--tls-key", help="the PEM private key of --tls-cert")
    tls.add_argument("--tls-ca", help="the CA file clients should trust (default: --tls-cert)")
    parser.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be > 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    if bool(args.tls_cert) != bool(args.tls_key):
        parser.error("--tls-cert and --tls-key go together")
    if args.tls_cert and args.tls:
        parser.error("--tls generates a certificate; with --tls-cert/--tls-key leave it out")
    return args


def tls_files(args: argparse.Namespace) -> TlsFiles | None:
    """The HTTPS files the arguments ask for (generated for --tls), or None for plain HTTP."""
    if args.tls_cert:
        return TlsFiles.given(args.tls_cert, args.tls_key, args.tls_ca)
    if not args.tls:
        return None
    folder = args.tls_dir or tempfile.mkdtemp(prefix="amc-emulator-tls-")
    return generate(folder, server_names(args.host, args.tls_name))


async def _serve(args: argparse.Namespace) -> None:
    tls = tls_files(args)
    sock = bind(args.host, args.port)
    config = EmulatorConfig(scaled_lifetimes=args.scaled_lifetimes)
    state = EmulatorState(seed=args.seed, speed=args.speed, config=config)
    server = build_server(state, args.log_level, tls)

    async def announce() -> None:
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.02)
        if tls is not None:
            print(f"AMC emulator CA certificate: {tls.ca_file}", flush=True)
        print(f"AMC emulator listening on {base_url(sock, tls is not None)}", flush=True)

    announcer = asyncio.create_task(announce())
    await server.serve(sockets=[sock])
    announcer.cancel()


def main(argv: list[str] | None = None) -> int:
    asyncio.run(_serve(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
