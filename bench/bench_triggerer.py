"""Benchmark 2: thousands of deferred triggers in one (or two) event loops, ours vs HttpSensorTrigger.

The answers come from ``bench/status_server.py`` in its own process (its CPU is not counted, but
reported so a reader can see it was not saturated): it replays what the emulator answers —
recorded from a real emulator run at start-up — at a fraction of the emulator's CPU, so the
figures measure the triggers, not a server queue. Each phase runs in fresh child process(es)
(``--phase``), so CPU time, peak RSS and connection counts are their own:

* ``amc``: N ``AmcExecutionTrigger`` on N RUNNING executions, built as ``AmcExecutionSensor``
  defers them and started as Airflow's triggerer starts them (``TriggerRunner.create_triggers``:
  one task per trigger, ``await asyncio.sleep(0)`` twice per trigger before it is created; the
  task does ``async for event in trigger.run()``);
* ``http``: N ``HttpSensorTrigger`` on the same GET path (``…/workflowExecutions/{id}``) through an
  ``http`` connection carrying the bearer token and AMC headers. It only keeps polling on 404, so
  it polls ids the server answers with the emulator's recorded 404;
* ``amc xK`` (``--split K``): the same N AMC triggers spread over K triggerer processes at once.

Polls achieved are counted by the server (and by the children, for per-process figures); polls
asked = what the triggers would make in the duration if every poll took no time: triggers x
duration / interval for ``HttpSensorTrigger`` (first poll at once); for ours the first poll waits
``first_poll_wait`` (1-2 intervals, 1.5 on average), so triggers x ((duration - 1.5 interval) /
interval + 0.5). A 10 ms ticker measures event-loop lag; lag "after start-up" excludes the
triggerer's start-up: creating every trigger and each one's first poll plus ``--settle`` seconds.
Usage::

    python bench/bench_triggerer.py [--triggers 1000] [--poll-interval 2] [--duration 30] [--split 2]
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
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import _common  # noqa: F401 - sets AIRFLOW_HOME before Airflow is imported
from _common import Emulator, amc_connection_uri, cpu_seconds, peak_rss_mb, print_table, verdict
from status_server import MISSING_PREFIX

from airflow_provider_amc.triggers.amc import FIRST_POLL_SPREAD

INSTANCE = "amcdemo0001"
EXECUTIONS_PATH = f"/amc/reporting/{INSTANCE}/workflowExecutions/"
TICK = 0.01
BENCH_DIR = Path(__file__).resolve().parent


# ---- child process: one phase ---------------------------------------------------------------------
class LoopProbe:
    """Event-loop lag (sleep overshoot of a ticker) and TCP connections opened on the loop.

    Each tick also records the thread's CPU time during the tick: ``min(overshoot, CPU time)`` is
    the part of the overshoot this process was running for (an upper bound of the lag its own code
    caused), which the OS giving the core to other processes on a loaded machine does not inflate.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.lags: list[tuple[float, float, float]] = []  # (seconds since start, overshoot, on CPU)
        self.start = time.perf_counter()
        self.connections = 0
        original = loop.create_connection

        async def counting(*args: Any, **kwargs: Any) -> Any:
            self.connections += 1
            return await original(*args, **kwargs)

        loop.create_connection = counting  # type: ignore[method-assign]

    async def tick(self) -> None:
        while True:
            start, cpu = time.perf_counter(), time.thread_time()
            await asyncio.sleep(TICK)
            overshoot = time.perf_counter() - start - TICK
            self.lags.append((start - self.start, overshoot, min(overshoot, time.thread_time() - cpu)))

    def figures(self, after: float) -> dict[str, float]:
        """Lag figures (ms): all ticks, and the ticks from ``after`` seconds on."""
        figures = {}
        for name, ticks in (("", self.lags), ("steady_", [t for t in self.lags if t[0] >= after])):
            wall, on_cpu = sorted(t[1] for t in ticks), sorted(t[2] for t in ticks)
            figures[f"{name}max_lag_ms"] = 1000 * wall[-1] if wall else float("nan")
            figures[f"{name}p99_lag_ms"] = 1000 * percentile(wall, 0.99)
            figures[f"{name}max_cpu_lag_ms"] = 1000 * on_cpu[-1] if on_cpu else float("nan")
            figures[f"{name}p99_cpu_lag_ms"] = 1000 * percentile(on_cpu, 0.99)
        return figures


class GcPauses:
    """Garbage-collector pauses in this process (``gc.callbacks``), in thread CPU time (not inflated
    by other processes on a loaded machine): the longest one, their sum, the full collections."""

    def __init__(self) -> None:
        import gc

        self.longest, self.total, self.collections, self._start = 0.0, 0.0, 0, 0.0
        self.full, self.longest_full = 0, 0.0
        self.tracked_at_start = len(gc.get_objects())
        gc.callbacks.append(self.callback)

    def callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.thread_time()
            return
        pause = time.thread_time() - self._start
        self.longest, self.total = max(self.longest, pause), self.total + pause
        self.collections += 1
        if info["generation"] == 2:
            self.full += 1


def count_requests() -> dict[str, int]:
    """Count the HTTP requests our client completes in this process (to split the server's total)."""
    from airflow_provider_amc.client.aio import AsyncAmcClient

    counts = {"requests": 0}
    send = AsyncAmcClient._send

    async def counted(self: AsyncAmcClient, request: Any) -> Any:
        answer = await send(self, request)
        counts["requests"] += 1  # answered (or failed), not merely queued for a connection
        return answer

    AsyncAmcClient._send = counted  # type: ignore[method-assign]
    return counts


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


def percentile(values: list[float], fraction: float) -> float:
    return values[min(int(len(values) * fraction), len(values) - 1)] if values else 0.0


async def run_phase(args: argparse.Namespace, ids: list[str]) -> dict[str, Any]:
    probe = LoopProbe(asyncio.get_running_loop())
    sent = count_requests()
    triggers = (http_triggers if args.phase == "http" else amc_triggers)(ids, args.poll_interval)
    if args.gc_freeze:  # what Airflow's DAG processor does after its imports (not the triggerer)
        import gc

        gc.freeze()
    gc_pauses = GcPauses()
    events: list[Any] = []

    async def drive(trigger: Any) -> None:  # what TriggerRunner.run_trigger does with each trigger
        async for event in trigger.run():
            events.append(event.payload)
            return

    rss_before = peak_rss_mb()
    probe.start = time.perf_counter()
    ticker = asyncio.create_task(probe.tick())
    cpu_start, wall_start = cpu_seconds(), time.perf_counter()
    tasks = []
    for trigger in triggers:  # as TriggerRunner.create_triggers: yield to the loop twice per trigger
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(drive(trigger)))
    created = time.perf_counter() - probe.start
    _, pending = await asyncio.wait(tasks, timeout=args.duration - (time.perf_counter() - wall_start))
    # Measured up to here: cancelling thousands of triggers at once is not part of polling.
    cpu, wall = cpu_seconds() - cpu_start, time.perf_counter() - wall_start
    ticker.cancel()
    sent_in_time = sent["requests"]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    # Start-up: creating the triggers, then every trigger's first poll (after one poll interval).
    startup = created + args.poll_interval * FIRST_POLL_SPREAD + args.settle
    return {
        "kind": args.phase,
        "triggers": len(ids),
        "cpu_seconds": cpu,
        "wall_seconds": wall,
        "created_seconds": created,
        "startup_seconds": startup,
        "requests_sent": sent_in_time,
        "events": len(events),
        "event_statuses": sorted({str(e.get("status")) if isinstance(e, dict) else str(e) for e in events}),
        "cancelled": len(pending),
        **probe.figures(after=startup),
        "gc_longest_ms": 1000 * gc_pauses.longest,
        "gc_total_s": gc_pauses.total,
        "gc_collections": gc_pauses.collections,
        "gc_full_collections": gc_pauses.full,
        "gc_tracked_at_start": gc_pauses.tracked_at_start,
        "gc_tracked_at_end": len(__import__("gc").get_objects()),
        "rss_before_mb": rss_before,
        "peak_rss_mb": peak_rss_mb(),
        "connections": probe.connections,
    }


def child(args: argparse.Namespace) -> None:
    import logging

    ids = json.loads(Path(args.ids_file).read_text())
    if args.quiet_logs:
        logging.disable(logging.INFO)
    result = asyncio.run(run_phase(args, ids))
    Path(args.result_file).write_text(json.dumps(result))


# ---- parent: record the answers, start the status server, run the phases ----------------------------
def record_answers(path: Path) -> str:
    """Record the emulator's answers (token, a RUNNING execution, an unknown id) into ``path``;
    returns the access token."""
    import requests

    from airflow_provider_amc.emulator import defaults as d
    from airflow_provider_amc.hooks.amc import AmcHook

    def recorded(response: requests.Response) -> dict[str, Any]:
        content_type = response.headers["content-type"]
        return {"status": response.status_code, "content_type": content_type, "body": response.text}

    with Emulator(speed=1.0) as emulator:
        emulator.admin.script("demo_campaign_report", pending_seconds=0, running_seconds=3600)
        emulator.admin.config(unknown_execution_status=404)
        hook = AmcHook()
        from airflow_provider_amc.client import CreateExecutionRequest

        execution_id = hook.create_execution(
            CreateExecutionRequest(workflow_id="demo_campaign_report")
        ).workflow_execution_id
        time.sleep(0.5)  # past PENDING (0 s): the recorded body is RUNNING
        token = requests.post(
            emulator.url + "/auth/o2/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": d.DEFAULT_REFRESH_TOKEN,
                "client_id": d.DEFAULT_CLIENT_ID,
                "client_secret": d.DEFAULT_CLIENT_SECRET,
            },
            timeout=30,
        )
        headers = {
            "Authorization": f"Bearer {token.json()['access_token']}",
            "Amazon-Advertising-API-ClientId": d.DEFAULT_CLIENT_ID,
            "Amazon-Advertising-API-AdvertiserId": d.DEFAULT_ADVERTISER_ID,
            "Amazon-Advertising-API-MarketplaceId": d.DEFAULT_MARKETPLACE_ID,
        }
        running = requests.get(emulator.url + EXECUTIONS_PATH + execution_id, headers=headers, timeout=30)
        missing = requests.get(
            emulator.url + EXECUTIONS_PATH + MISSING_PREFIX + "000000000000", headers=headers, timeout=30
        )
        hook.close()
    status = running.json().get("status")
    if running.status_code != 200 or status != "RUNNING" or missing.status_code != 404:
        raise RuntimeError(
            f"unexpected emulator answers: {running.status_code} {status} {missing.status_code}"
        )
    answers = {
        "token": recorded(token),
        "execution": recorded(running),
        "missing": recorded(missing),
        "execution_id": execution_id,
    }
    path.write_text(json.dumps(answers))
    return str(token.json()["access_token"])


class StatusServer:
    """``bench/status_server.py`` in its own process; request counts and its CPU time."""

    def __init__(self, answers: Path) -> None:
        cmd = [sys.executable, str(BENCH_DIR / "status_server.py"), str(answers)]
        self.process = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().split()[-1]
        if not self.url.startswith("http://"):
            self.close()
            raise RuntimeError(f"status server did not announce its URL (got {self.url!r})")

    def counts(self, reset: bool = True) -> dict[str, int]:
        query = "?reset=1" if reset else ""
        with urllib.request.urlopen(f"{self.url}/__bench/counts{query}", timeout=30) as answer:
            counts: dict[str, int] = json.load(answer)
        return counts

    def cpu_seconds(self) -> float:
        import psutil

        times = psutil.Process(self.process.pid).cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(10)


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


def asked(args: argparse.Namespace, phase: str, triggers: int) -> float:
    """Polls the triggers would make in the duration if every poll took no time (module doc)."""
    if phase == "http":
        return triggers * args.duration / args.poll_interval
    first = args.poll_interval * (1 + FIRST_POLL_SPREAD) / 2  # the mean first wait
    return triggers * ((args.duration - first) / args.poll_interval + 0.5)


def start_child(args: argparse.Namespace, phase: str, ids: list[str], workdir: Path, name: str) -> Any:
    ids_file, result_file = workdir / f"{name}.ids.json", workdir / f"{name}.result.json"
    ids_file.write_text(json.dumps(ids))
    cmd = [sys.executable, __file__, "--phase", phase, "--ids-file", str(ids_file)]
    cmd += ["--result-file", str(result_file), "--poll-interval", str(args.poll_interval)]
    cmd += ["--duration", str(args.duration), "--settle", str(args.settle)]
    cmd += ["--quiet-logs"] if args.quiet_logs else []
    cmd += ["--gc-freeze"] if args.gc_freeze else []
    return subprocess.Popen(cmd, env=os.environ.copy(), stdout=subprocess.DEVNULL), result_file


def measure(
    args: argparse.Namespace, server: StatusServer, phase: str, id_sets: list[list[str]], workdir: Path
) -> dict[str, Any]:
    server.counts(reset=True)
    server_cpu, wall = server.cpu_seconds(), time.perf_counter()
    children = [start_child(args, phase, ids, workdir, f"{phase}{n}") for n, ids in enumerate(id_sets)]
    for process, _ in children:
        if process.wait() != 0:
            raise RuntimeError(f"phase {phase} child failed ({process.returncode})")
    server_cpu, wall = server.cpu_seconds() - server_cpu, time.perf_counter() - wall
    counts = server.counts(reset=True)
    processes = [json.loads(result_file.read_text()) for _, result_file in children]
    polls = counts.get("missing" if phase == "http" else "status", 0)
    for result in processes:  # per process: its own requests minus its one token request
        result["polls"] = result["requests_sent"] - 1 if phase == "amc" else polls
        result["cpu_ms_per_poll"] = 1000 * result["cpu_seconds"] / max(result["polls"], 1)
    cpu = sum(r["cpu_seconds"] for r in processes)
    return {
        "phase": phase,
        "processes": processes,
        "triggers": sum(len(ids) for ids in id_sets),
        "polls": polls,
        "asked": sum(asked(args, phase, len(ids)) for ids in id_sets),
        "tokens": counts.get("token", 0),
        "other_requests": counts.get("other", 0),
        "cpu_seconds": cpu,
        "cpu_ms_per_poll": 1000 * cpu / max(polls, 1),
        "server_cpu_percent": 100 * server_cpu / wall,
        "loadavg": Path("/proc/loadavg").read_text().split()[0],
    }


def parent(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="amc-bench-triggerer-") as tmp:
        workdir = Path(tmp)
        token = record_answers(workdir / "answers.json")
        server = StatusServer(workdir / "answers.json")
        try:
            os.environ["AIRFLOW_CONN_AMC_DEFAULT"] = amc_connection_uri(server.url)
            os.environ["AIRFLOW_CONN_AMC_HTTP"] = http_connection(server.url, token)
            ids = [str(uuid.uuid4()) for _ in range(args.triggers)]
            missing = [f"{MISSING_PREFIX}{n:012d}" for n in range(args.triggers)]
            results = {"amc": measure(args, server, "amc", [ids], workdir)}
            if "http" not in args.skip:
                results["http"] = measure(args, server, "http", [missing], workdir)
            if args.split > 1:
                halves = [ids[n :: args.split] for n in range(args.split)]
                results["split"] = measure(args, server, "amc", halves, workdir)
        finally:
            server.close()
    report(args, results)


NAMES = {"amc": "AmcExecutionTrigger", "http": "HttpSensorTrigger", "split": "AmcExecutionTrigger"}


def lag(r: dict[str, Any], prefix: str = "steady_") -> str:
    """``max (p99)`` of the wall-clock lag, then of its on-CPU part, in ms."""
    wall = f"{r[f'{prefix}max_lag_ms']:.0f} ({r[f'{prefix}p99_lag_ms']:.0f})"
    return f"{wall} / {r[f'{prefix}max_cpu_lag_ms']:.0f} ({r[f'{prefix}p99_cpu_lag_ms']:.0f})"


def report(args: argparse.Namespace, results: dict[str, dict[str, Any]]) -> None:
    rows = []
    for key, result in results.items():
        for n, r in enumerate(result["processes"]):
            rows.append(
                [
                    NAMES[key],
                    f"{n + 1} of {len(result['processes'])}",
                    r["triggers"],
                    f"{r['polls']} of {asked(args, key, r['triggers']):.0f}",
                    f"{r['cpu_seconds']:.2f}",
                    f"{r['cpu_ms_per_poll']:.3f}",
                    lag(r),
                    lag(r, prefix=""),
                    f"{r['created_seconds']:.1f}",
                    f"{r['rss_before_mb']:.0f} / {r['peak_rss_mb']:.0f}",
                    r["connections"],
                    f"{r['gc_longest_ms']:.0f} / {r['gc_total_s']:.2f} / {r['gc_full_collections']}"
                    f" ({r['gc_tracked_at_start'] // 1000}k → {r['gc_tracked_at_end'] // 1000}k objects)",
                ]
            )
    print_table(
        f"{args.triggers} triggers, poll interval {args.poll_interval:g} s, {args.duration:g} s per phase "
        f"(logs {'at WARNING' if args.quiet_logs else 'at INFO, to /dev/null'}"
        f"{', gc.freeze() after imports' if args.gc_freeze else ''})",
        [
            "trigger",
            "process",
            "triggers",
            "polls achieved of asked",
            "CPU s",
            "CPU ms/poll",
            "lag ms after start-up: max (p99) wall / on CPU",
            "lag ms incl. start-up: max (p99) wall / on CPU",
            "s to create all",
            "RSS MB before / peak",
            "TCP conns opened",
            "GC on CPU: longest ms / total s / full collections (tracked objects)",
        ],
        rows,
    )
    print_table(
        "Whole phase (server side)",
        [
            "phase",
            "processes",
            "polls achieved of asked",
            "CPU ms/poll (all processes)",
            "LwA tokens",
            "other requests",
            "status server CPU % of one core",
            "load average (1 min) at the end",
        ],
        [
            [
                NAMES[key],
                len(r["processes"]),
                f"{r['polls']} of {r['asked']:.0f} ({100 * r['polls'] / r['asked']:.0f} %)",
                f"{r['cpu_ms_per_poll']:.3f}",
                r["tokens"],
                r["other_requests"],
                f"{r['server_cpu_percent']:.1f} %",
                r["loadavg"],
            ]
            for key, r in results.items()
        ],
    )
    print_targets(results)


def print_targets(results: dict[str, dict[str, Any]]) -> None:
    ours, theirs = results["amc"], results.get("http")
    one = ours["processes"][0]
    http = theirs["processes"][0] if theirs else None
    rows: list[list[object]] = [
        [
            "polls achieved of asked",
            f"{100 * ours['polls'] / ours['asked']:.0f} %",
            f"{100 * theirs['polls'] / theirs['asked']:.0f} %" if theirs else "",
            "",
            "(all asked)",
            verdict(ours["polls"] >= 0.95 * ours["asked"]),
        ]
    ]
    if theirs:
        ratio = theirs["cpu_ms_per_poll"] / ours["cpu_ms_per_poll"]
        rows.append(
            [
                "CPU per poll",
                f"{ours['cpu_ms_per_poll']:.3f} ms",
                f"{theirs['cpu_ms_per_poll']:.3f} ms",
                f"{ratio:.2f}x cheaper",
                "≥ 2x cheaper",
                verdict(ratio >= 2),
            ]
        )
    for label, key in (("wall", "steady_max_lag_ms"), ("on CPU", "steady_max_cpu_lag_ms")):
        rows.append(
            [
                f"worst loop lag after start-up ({label})",
                f"{one[key]:.0f} ms",
                f"{http[key]:.0f} ms" if http else "",
                "",
                "≤ 50 ms",
                verdict(one[key] <= 50),
            ]
        )
    rows.append(
        [
            "peak RSS",
            f"{one['peak_rss_mb']:.0f} MB",
            f"{http['peak_rss_mb']:.0f} MB" if http else "",
            "",
            "",
            "",
        ]
    )
    rows.append(
        ["LwA token requests", ours["tokens"], "n/a (static header)", "", "1", verdict(ours["tokens"] == 1)]
    )
    header = ["metric (one triggerer process)", "ours", "HttpSensorTrigger", "ratio", "target", "met?"]
    print_table("Targets", header, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--triggers", type=int, default=1000)
    parser.add_argument("--poll-interval", type=float, default=2.0)
    parser.add_argument("--duration", type=float, default=30.0, help="seconds each phase runs")
    parser.add_argument(
        "--split", type=int, default=0, help="also run the AMC triggers over this many processes"
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["http"], help="phases not to run")
    parser.add_argument(
        "--settle", type=float, default=1.0, help="seconds after the first polls still counted as start-up"
    )
    parser.add_argument("--quiet-logs", action="store_true", help="disable INFO logs")
    parser.add_argument(
        "--gc-freeze", action="store_true", help="gc.freeze() in each triggerer process after its imports"
    )
    parser.add_argument("--phase", choices=["amc", "http"], help=argparse.SUPPRESS)
    parser.add_argument("--ids-file", help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        child(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
