"""Benchmark 1: worker slot-seconds per AMC execution: deferrable (also with ``start_from_trigger``)
vs poke vs reschedule.

One emulated 15-minute execution (60 s PENDING + 840 s RUNNING, 1,000 result rows) per mode, the
emulator running ``SPEED`` times faster than real time in its own process. The sensor's own code
runs in this process; see bench/README.md for the model. Usage::

    python bench/bench_sensor_slots.py [--speed 100]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import _common  # noqa: F401 - sets AIRFLOW_HOME before Airflow is imported
from _common import Emulator, print_table, process_start_seconds, verdict

RUN_SECONDS = 900.0  # emulated duration of the AMC execution
POKE_INTERVAL = 60.0  # emulated seconds between status checks (the sensor's default)


class FakeTaskInstance:
    """What the sensor touches on ``context["ti"]`` (XCom push, the reschedule start date)."""

    def __init__(self) -> None:
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value

    def get_first_reschedule_date(self, context: Any) -> None:
        return None


@dataclass
class ModeResult:
    mode: str
    tries: int = 0
    pokes: int = 0
    work_seconds: float = 0.0  # real seconds of sensor code (pokes, deferral, completion)
    wait_seconds: float = 0.0  # emulated seconds the slot sat sleeping (poke mode only)
    token_requests: int = 0
    notes: list[str] = field(default_factory=list)

    def slot_seconds(self, start_cost: float) -> float:
        return self.wait_seconds + self.work_seconds + self.tries * start_cost


def new_process() -> None:
    """Forget process-wide state, as a new task try would (a new process has no cached token)."""
    from airflow_provider_amc.client.auth import TOKEN_CACHE

    TOKEN_CACHE.clear()


def make_sensor(execution_id: str, speed: float, **kwargs: Any) -> Any:
    from airflow_provider_amc.sensors.amc import AmcExecutionSensor

    return AmcExecutionSensor(
        task_id="wait",
        execution_id=execution_id,
        postgres_conn_id=None,
        poke_interval=POKE_INTERVAL / speed,
        timeout=10 * RUN_SECONDS,
        **kwargs,
    )


class PokeCounter:
    """Wrap ``sensor.poke`` to count calls and their real time."""

    def __init__(self, sensor: Any) -> None:
        self.calls, self.seconds, self._poke = 0, 0.0, sensor.poke
        sensor.poke = self

    def __call__(self, context: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._poke(context)
        finally:
            self.calls += 1
            self.seconds += time.perf_counter() - start


def start_execution(emulator: Emulator) -> str:
    from airflow_provider_amc.client import CreateExecutionRequest
    from airflow_provider_amc.hooks.amc import AmcHook

    hook = AmcHook()
    request = CreateExecutionRequest(workflow_id="demo_campaign_report", time_window_type="MOST_RECENT_DAY")
    execution = hook.create_execution(request)
    hook.close()
    emulator.admin.clear_requests()
    return execution.workflow_execution_id


def run_poke(emulator: Emulator, speed: float) -> ModeResult:
    execution_id = start_execution(emulator)
    new_process()
    sensor = make_sensor(execution_id, speed, deferrable=False, mode="poke")
    counter = PokeCounter(sensor)
    start = time.perf_counter()
    sensor.execute({"ti": FakeTaskInstance()})
    wall = time.perf_counter() - start
    sleeping = wall - counter.seconds  # real seconds asleep between pokes: scale back to emulated
    result = ModeResult("poke", tries=1, pokes=counter.calls, work_seconds=counter.seconds)
    result.wait_seconds = sleeping * speed
    result.token_requests = emulator.admin.count("POST", "/auth/o2/token")
    return result


def run_reschedule(emulator: Emulator, speed: float) -> ModeResult:
    from airflow.sdk.exceptions import AirflowRescheduleException

    execution_id = start_execution(emulator)
    result = ModeResult("reschedule")
    while True:
        new_process()
        sensor = make_sensor(execution_id, speed, deferrable=False, mode="reschedule")
        counter = PokeCounter(sensor)
        start = time.perf_counter()
        try:
            sensor.execute({"ti": FakeTaskInstance()})
            done = True
        except AirflowRescheduleException:
            done = False
        result.work_seconds += time.perf_counter() - start
        result.tries += 1
        result.pokes += counter.calls
        if done:
            break
        time.sleep(POKE_INTERVAL / speed)  # the scheduler's wait: no slot held
    result.token_requests = emulator.admin.count("POST", "/auth/o2/token")
    return result


def wait_in_triggerer(trigger: Any, speed: float) -> tuple[dict[str, Any], float]:
    """The triggerer's part (no worker slot): the first event, and the emulated seconds it took."""

    async def first_event() -> Any:
        async for event in trigger.run():
            return event.payload
        return None

    start = time.perf_counter()
    payload = asyncio.run(first_event())
    if not isinstance(payload, dict) or payload.get("status") != "success":
        raise RuntimeError(f"unexpected trigger event {payload!r}")
    return payload, (time.perf_counter() - start) * speed


def complete_on_worker(
    result: ModeResult, execution_id: str, speed: float, payload: dict[str, Any], waited: float, **kwargs: Any
) -> ModeResult:
    """The resumed try: a new process runs ``execute_complete`` (streams the result once)."""
    new_process()
    resumed = make_sensor(execution_id, speed, deferrable=True, **kwargs)
    start = time.perf_counter()
    metadata = resumed.execute_complete({"ti": FakeTaskInstance()}, event=payload)
    result.work_seconds += time.perf_counter() - start
    result.notes.append(f"triggerer waited {waited:.0f} emulated s; rows={metadata['row_count']}")
    return result


def run_deferrable(emulator: Emulator, speed: float) -> ModeResult:
    from airflow.sdk.exceptions import TaskDeferred

    execution_id = start_execution(emulator)
    result = ModeResult("deferrable", tries=2)
    new_process()
    sensor = make_sensor(execution_id, speed, deferrable=True)
    counter = PokeCounter(sensor)
    start = time.perf_counter()
    try:
        sensor.execute({"ti": FakeTaskInstance()})
        raise RuntimeError("the sensor did not defer")
    except TaskDeferred as deferred:
        trigger = deferred.trigger
    result.work_seconds += time.perf_counter() - start
    result.pokes = counter.calls
    payload, waited = wait_in_triggerer(trigger, speed)
    complete_on_worker(result, execution_id, speed, payload, waited)
    result.token_requests = emulator.admin.count("POST", "/auth/o2/token")
    return result


def run_start_from_trigger(emulator: Emulator, speed: float) -> ModeResult:
    """``start_from_trigger=True``: the scheduler creates the trigger from the sensor's
    ``start_trigger_args`` (no worker try before it); one worker try runs ``execute_complete``."""
    from datetime import UTC, datetime

    from airflow.sdk.module_loading import import_string

    execution_id = start_execution(emulator)
    result = ModeResult("deferrable + start_from_trigger", tries=1)
    sensor = make_sensor(execution_id, speed, deferrable=True, start_from_trigger=True)  # parse time
    args = sensor.start_trigger_args
    trigger = import_string(args.trigger_cls)(**args.trigger_kwargs)  # what the triggerer builds
    trigger.timeout_after = datetime.now(UTC) + args.timeout  # the scheduler's trigger timeout
    payload, waited = wait_in_triggerer(trigger, speed)
    complete_on_worker(result, execution_id, speed, payload, waited, start_from_trigger=True)
    result.token_requests = emulator.admin.count("POST", "/auth/o2/token")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speed", type=float, default=100.0, help="emulator speed (default 100)")
    args = parser.parse_args()
    with Emulator(speed=args.speed) as emulator:
        emulator.admin.script(
            "demo_campaign_report", pending_seconds=60, running_seconds=RUN_SECONDS - 60, rows=1000
        )
        start_cost = process_start_seconds("airflow_provider_amc.sensors.amc")
        results = [run_poke(emulator, args.speed), run_reschedule(emulator, args.speed)]
        results.append(run_deferrable(emulator, args.speed))
        results.append(run_start_from_trigger(emulator, args.speed))
    poke_slot = results[0].slot_seconds(start_cost)
    rows = []
    for item in results:
        slot = item.slot_seconds(start_cost)
        rows.append(
            [
                item.mode,
                item.tries,
                item.pokes,
                f"{item.work_seconds:.3f}",
                f"{item.wait_seconds:.0f}",
                f"{slot:.2f}",
                f"1/{poke_slot / slot:.0f}" if item.mode != "poke" else "1",
                item.token_requests,
            ]
        )
    print_table(
        f"Worker slot-seconds per 15-min AMC execution (emulator speed {args.speed:g}, "
        f"process start {start_cost:.2f} s per try)",
        ["mode", "tries", "pokes", "sensor code s", "asleep in slot s", "slot-s", "vs poke", "LwA tokens"],
        rows,
    )
    targets = [
        ("slot-s per execution", "deferrable", results[2], 100),
        ("slot-s per execution", "deferrable + start_from_trigger", results[3], 300),
    ]
    target_rows = []
    for metric, name, item, factor in targets:
        slot = item.slot_seconds(start_cost)
        target_rows.append(
            [
                f"{metric} ({name})",
                f"{slot:.2f}",
                f"{poke_slot:.0f}",
                f"1/{poke_slot / slot:.0f}",
                f"<= 1/{factor}",
                verdict(slot * factor <= poke_slot),
            ]
        )
    print_table("Target", ["metric", "ours", "comparison (poke)", "ratio", "target", "met?"], target_rows)
    for item in results:
        for note in item.notes:
            print(f"- {item.mode}: {note}")


if __name__ == "__main__":
    main()
