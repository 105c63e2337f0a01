"""Benchmark 2: 1,000 concurrent triggers in one event loop, ours vs HttpSensorTrigger.

The emulator runs in its own process (its CPU is not counted). Each phase runs in a fresh child
process (``--phase``) so CPU time, peak RSS and connection counts are its own:

* ``amc``: 1,000 ``AmcExecutionTrigger`` on 1,000 RUNNING executions, as the triggerer runs them
  (one task per trigger doing ``async for event in trigger.run()``);
* ``http``: 1,000 ``HttpSensorTrigger`` on the same GET endpoint (``…/workflowExecutions/{id}``)
  through an ``http`` connection carrying the bearer token and AMC headers. It only keeps polling
  on 404, so it polls ids the emulator answers 404 for (config ``unknown_execution_status=404``).

A ticker coroutine measures event-loop lag; ``loop.create_connection`` is wrapped to count the TCP
connections opened; GET polls and LwA token requests are counted in the emulator request log.
Usage::

    python bench/bench_triggerer.py [--triggers 1000] [--poll-interval 2] [--duration 20]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

import _common  # noqa: F401 - sets AIRFLOW_HOME before Airflow is imported
from _common import Emulator, cpu_seconds, peak_rss_mb, print_table, verdict

INSTANCE = "amcdemo0001"
EXECUTIONS_PATH = f"/amc/reporting/{INSTANCE}/workflowExecutions/"
TICK = 0.01
WARMUP = 5.0  # seconds: the start-up burst (every trigger's first poll at once) ends before this


# ---- child process: one phase ---------------------------------------------------------------------
class LoopProbe:
    """Event-loop lag (sleep overshoot of a ticker) and TCP connections opened on the loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.lags: list[tuple[float, float]] = []  # (seconds since start, overshoot)
        self.start = time.perf_counter()
        self.connections = 0
        original = loop.create_connection

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.connections += 1
            return await original(*args, **kwargs)

        loop.create_connection = counting  # type: ignore[method-assign]

    async def tick(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            self.lags.append((start - self.start, time.perf_counter() - start - TICK))


def amc_triggers(ids: list[str], poll_interval: float) -> list[Any]:
    from airflow_provider_amc.triggers.amc import AmcExecutionTrigger

    # Configured as AmcExecutionSensor defers: the worker has just polled, so the first poll waits.
    return [
        AmcExecutionTrigger(execution_id=eid, poll_interval=poll_interval, first_poll_delay=poll_interval)
        for eid in ids
    ]


def http_triggers(ids: list[str], poll_interval: float) -> list[Any]:
    from airflow.providers.http.triggers.http import HttpSensorTrigger

    return [
        HttpSensorTrigger(
            endpoint=EXECUTIONS_PATH + eid, http_conn_id="amc_http", poke_interval=poll_interval
        )
        for eid in ids
    ]


async def run_phase(kind: str, ids: list[str], poll_interval: float, duration: float) -> dict[str, Any]:
    probe = LoopProbe(asyncio.get_running_loop())
    triggers = (http_triggers if kind == "http" else amc_triggers)(ids, poll_interval)
    events: list[Any] = []

    async def drive(trigger: Any) -> None:  # what the triggerer does with each trigger
        async for event in trigger.run():
            events.append(event.payload)
            return

    rss_before = peak_rss_mb()
    ticker = asyncio.create_task(probe.tick())
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    tasks = [asyncio.create_task(drive(trigger)) for trigger in triggers]
    _, pending = await asyncio.wait(tasks, timeout=duration)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start
    ticker.cancel()
    lags = sorted(lag for _, lag in probe.lags)
    steady = sorted(lag for at, lag in probe.lags if at >= WARMUP)
    return {
        "kind": kind,
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "events": len(events),
        "event_statuses": sorted({str(e.get("status")) if isinstance(e, dict) else str(e) for e in events}),
        "cancelled": len(pending),
        "max_lag_ms": lags[-1] * 1000,
        "p99_lag_ms": lags[int(len(lags) * 0.99)] * 1000,
        "steady_max_lag_ms": steady[-1] * 1000,
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "connections": probe.connections,
    }


def child(args: argparse.Namespace) -> None:
    import logging

    ids = json.loads(os.environ["BENCH_IDS"])
    if args.quiet_logs:
        logging.disable(logging.INFO)
    result = asyncio.run(run_phase(args.phase, ids, args.poll_interval, args.duration))
    with open(args.result_file, "w") as handle:
        json.dump(result, handle)


# ---- parent: set up the emulator, run the phases, print the tables ----------------------------------
def http_connection(url: str, token: str) -> str:
    from airflow_provider_amc.emulator import defaults as d

    headers = {
        "Authorization": f"Bearer {token}",
        "Amazon-Advertising-API-ClientId": d.DEFAULT_CLIENT_ID,
        "Amazon-Advertising-API-AdvertiserId": d.DEFAULT_ADVERTISER_ID,
        "Amazon-Advertising-API-MarketplaceId": d.DEFAULT_MARKETPLACE_ID,
        "Accept": "application/vnd.amcworkflowexecutions.v1+json",
    }
    return json.dumps({"conn_type": "http", "host": url, "extra": headers})


def create_executions(count: int) -> list[str]:
    from concurrent.futures import ThreadPoolExecutor

    from airflow_provider_amc.client import CreateExecutionRequest
    from airflow_provider_amc.hooks.amc import AmcHook

    hook = AmcHook()
    request = CreateExecutionRequest(workflow_id="demo_campaign_report")
    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(lambda _: hook.create_execution(request).workflow_execution_id, range(count)))
    hook.close()
    return ids


def run_child(args: argparse.Namespace, phase: str, ids: list[str], env: dict[str, str]) -> dict[str, Any]:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as handle:
        result_file = handle.name
    cmd = [sys.executable, __file__, "--phase", phase, "--result-file", result_file]
    cmd += ["--poll-interval", str(args.poll_interval), "--duration", str(args.duration)]
    cmd += ["--quiet-logs"] if args.quiet_logs else []
    subprocess.run(cmd, check=True, env={**env, "BENCH_IDS": json.dumps(ids)}, stdout=subprocess.DEVNULL)
    with open(result_file) as handle:
        result: dict[str, Any] = json.load(handle)
    os.unlink(result_file)
    return result


def measure(args: argparse.Namespace, emulator: Emulator, phase: str, ids: list[str]) -> dict[str, Any]:
    emulator.admin.clear_requests()
    result = run_child(args, phase, ids, os.environ.copy())
    log = emulator.admin.requests()
    polls = [e for e in log if e["method"] == "GET" and e["path"].startswith(EXECUTIONS_PATH)]
    result["polls"] = len(polls)
    result["poll_statuses"] = sorted({str(e["status"]) for e in polls})
    result["tokens"] = sum(1 for e in log if e["method"] == "POST" and e["path"] == "/auth/o2/token")
    result["cpu_ms_per_poll"] = 1000 * result["cpu_seconds"] / max(result["polls"], 1)
    return result


def parent(args: argparse.Namespace) -> None:
    with Emulator(speed=1.0) as emulator:
        limit = max(args.triggers, 30)
        emulator.admin.config(concurrency_limit=limit, daily_quota=limit)
        running = args.duration + 60  # still RUNNING when the phase ends: every poll is a status poll
        emulator.admin.script("demo_campaign_report", pending_seconds=0, running_seconds=running)
        ids = create_executions(args.triggers)
        from airflow_provider_amc.hooks.amc import AmcHook

        token = AmcHook().get_access_token()
        os.environ["AIRFLOW_CONN_AMC_HTTP"] = http_connection(emulator.url, token)
        results = {"amc": measure(args, emulator, "amc", ids)}
        emulator.admin.config(unknown_execution_status=404)
        missing = [f"00000000-0000-4000-8000-{n:012d}" for n in range(args.triggers)]
        results["http"] = measure(args, emulator, "http", missing)
    report(args, results)


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    names = {
        "amc": "AmcExecutionTrigger",
        "http": "HttpSensorTrigger",
    }
    rows = [
        [
            names[key],
            f"{r['polls']} ({'/'.join(r['poll_statuses'])})",
            f"{r['cpu_seconds']:.2f}",
            f"{r['cpu_ms_per_poll']:.3f}",
            f"{r['max_lag_ms']:.0f}",
            f"{r['steady_max_lag_ms']:.0f}",
            f"{r['p99_lag_ms']:.0f}",
            f"{r['rss_before_mb']:.0f} / {r['peak_rss_mb']:.0f}",
            r["connections"],
            r["tokens"],
            r["events"],
        ]
        for key, r in results.items()
    ]
    print_table(
        f"{args.triggers} triggers, poll interval {args.poll_interval:g} s, {args.duration:g} s each "
        f"(logs {'at WARNING' if args.quiet_logs else 'at INFO, to /dev/null'})",
        [
            "trigger",
            "GET polls (status)",
            "CPU s",
            "CPU ms/poll",
            "max lag ms",
            f"max lag ms after {WARMUP:g} s",
            "p99 lag ms",
            "RSS MB before / peak",
            "TCP conns opened",
            "LwA tokens",
            "events",
        ],
        rows,
    )
    ours, theirs = results["amc"], results["http"]
    ratio = theirs["cpu_ms_per_poll"] / ours["cpu_ms_per_poll"]
    print_table(
        "Targets",
        ["metric", "ours", "HttpSensorTrigger", "ratio", "target", "met?"],
        [
            [
                "CPU per poll",
                f"{ours['cpu_ms_per_poll']:.3f} ms",
                f"{theirs['cpu_ms_per_poll']:.3f} ms",
                f"{ratio:.2f}x cheaper",
                "<= 2 ms and >= 2x cheaper",
                verdict(ours["cpu_ms_per_poll"] <= 2 and ratio >= 2),
            ],
            [
                "worst loop lag (incl. start-up burst)",
                f"{ours['max_lag_ms']:.0f} ms",
                f"{theirs['max_lag_ms']:.0f} ms",
                "",
                "<= 50 ms",
                verdict(ours["max_lag_ms"] <= 50),
            ],
            [
                f"worst loop lag after {WARMUP:g} s",
                f"{ours['steady_max_lag_ms']:.0f} ms",
                f"{theirs['steady_max_lag_ms']:.0f} ms",
                "",
                "<= 50 ms",
                verdict(ours["steady_max_lag_ms"] <= 50),
            ],
            [
                "peak RSS",
                f"{ours['peak_rss_mb']:.0f} MB",
                f"{theirs['peak_rss_mb']:.0f} MB",
                "",
                "<= 300 MB",
                verdict(ours["peak_rss_mb"] <= 300),
            ],
            ["TCP connections", ours["connections"], theirs["connections"], "", "(reuse)", ""],
            [
                "LwA token requests",
                ours["tokens"],
                "n/a (static header)",
                "",
                "1",
                verdict(ours["tokens"] == 1),
            ],
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds each phase runs")
    parser.add_argument("--quiet-logs", action="store_true", help="disable INFO logs (per-poll lines)")
    parser.add_argument("--phase", choices=["amc", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
