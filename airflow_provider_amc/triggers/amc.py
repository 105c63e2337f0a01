"""``AmcExecutionTrigger``: poll one AMC execution in the triggerer until it ends."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_amc.client import (
    AmcApiError,
    AmcAuthError,
    AmcConfigError,
    AmcNotFoundError,
    AmcResponseError,
    AmcThrottledError,
    WorkflowExecution,
)
from airflow_provider_amc.hooks.amc import AmcHook
from airflow_provider_amc.lifecycle import AmcStatus, ExecutionEvent, Submission

#: Errors that will not go away by polling again.
PERMANENT_ERRORS = (AmcAuthError, AmcNotFoundError, AmcConfigError)


def is_permanent(exc: BaseException) -> bool:
    """Whether polling again cannot help: auth/not-found/config errors and any other 4xx answer
    (a GET that AMC refuses as a bad request keeps being refused); throttling, 5xx, network
    failures and unparsable bodies are transient."""
    if isinstance(exc, PERMANENT_ERRORS):
        return True
    if isinstance(exc, AmcApiError) and not isinstance(exc, AmcThrottledError | AmcResponseError):
        return exc.status_code is not None and 400 <= exc.status_code < 500 and exc.status_code != 408
    return False


#: The first poll waits between ``first_poll_delay`` and this many times it.
FIRST_POLL_SPREAD = 2.0


def first_poll_wait(first_poll_delay: float, draw: Callable[[], float] = random.random) -> float:
    """Seconds before the first poll: at least ``first_poll_delay`` (the worker has just polled;
    Airflow 3.3.2's heartbeat race), spread uniformly over one more ``first_poll_delay``.

    Triggers resumed together (a triggerer restart hands over thousands at once) then poll evenly
    over the interval. A narrower spread keeps them in step: with the polls of one interval
    bunched in a quarter of it (the former 75-100 % jitter) every interval, 5,000 triggers at
    10 s asked for 2,000 polls/s in bursts and the loop fell behind (bench/README.md, §2).
    """
    return first_poll_delay * (1.0 + (FIRST_POLL_SPREAD - 1.0) * draw())


def trigger_event(payload: dict[str, Any]) -> TriggerEvent:
    """The one place an event is built (Airflow's ``TriggerEvent.__init__`` carries no types)."""
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]


class AmcExecutionTrigger(BaseTrigger):
    """
    Poll an AMC workflow execution until it reaches a terminal status.

    Runs in the triggerer; only reads (the create call happens on the worker). Every argument is a
    JSON primitive so the trigger survives triggerer restarts; the deadline is absolute so a restart
    does not extend it.

    :param execution_id: the ``workflowExecutionId``.
    :param instance_id: the AMC instance (``None``: the connection's default).
    :param amc_conn_id: the ``amc`` connection.
    :param poll_interval: seconds between the first polls.
    :param end_time: absolute deadline (epoch seconds); past it the trigger sends a ``timeout`` event.
    :param max_poll_interval: the interval grows by ``poll_backoff`` per poll up to this many seconds.
    :param poll_backoff: growth factor of the interval (1.0 = fixed interval).
    :param max_consecutive_errors: transient errors (throttling, 5xx, network) tolerated in a row.
    :param cancel_on_kill: cancel the AMC execution when the deferred task is cleared or marked.
    :param first_poll_delay: seconds to wait at least before the first poll (the worker usually
        polled just before deferring; this also keeps the event out of Airflow 3.3.2's heartbeat race
        window); the wait is spread up to twice this so triggers resumed together do not poll in step.
    :param submission: the :class:`~airflow_provider_amc.lifecycle.Submission` (as a dict) when the
        deferring task made it; handed back in the event so completion needs no table read.
    :param deadline_margin: with no ``end_time``: the deadline is Airflow's trigger timeout
        (``timeout_after``, absolute, kept in the metadata database) minus this many seconds, so the
        trigger's own ``timeout`` event comes before Airflow's backstop. Used when the sensor starts
        in the triggerer (``start_from_trigger``), where no worker could compute ``end_time``.
    """

    def __init__(
        self,
        *,
        execution_id: str,
        amc_conn_id: str = AmcHook.default_conn_name,
        instance_id: str | None = None,
        poll_interval: float = 60.0,
        end_time: float | None = None,
        max_poll_interval: float | None = None,
        poll_backoff: float = 1.0,
        max_consecutive_errors: int = 5,
        cancel_on_kill: bool = True,
        first_poll_delay: float = 0.0,
        submission: dict[str, Any] | None = None,
        deadline_margin: float | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # BaseTrigger.__init__ is untyped
        self.execution_id = execution_id
        self.amc_conn_id = amc_conn_id
        self.instance_id = instance_id
        self.poll_interval = float(poll_interval)
        self.end_time = end_time
        self.max_poll_interval = float(max_poll_interval) if max_poll_interval else self.poll_interval
        self.poll_backoff = float(poll_backoff)
        self.max_consecutive_errors = int(max_consecutive_errors)
        self.cancel_on_kill = cancel_on_kill
        self.first_poll_delay = float(first_poll_delay)
        self.submission = Submission.load(submission)
        self.deadline_margin = deadline_margin

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "execution_id": self.execution_id,
                "amc_conn_id": self.amc_conn_id,
                "instance_id": self.instance_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "max_poll_interval": self.max_poll_interval,
                "poll_backoff": self.poll_backoff,
                "max_consecutive_errors": self.max_consecutive_errors,
                "cancel_on_kill": self.cancel_on_kill,
                "first_poll_delay": self.first_poll_delay,
                "submission": self.submission.as_dict() if self.submission else None,
                "deadline_margin": self.deadline_margin,
            },
        )

    def _event(self, status: Literal["timeout", "error"], message: str) -> TriggerEvent:
        event = ExecutionEvent(
            status=status, execution_id=self.execution_id, instance_id=self.instance_id, message=message
        )
        return trigger_event(event.payload())

    def _terminal_event(self, execution: WorkflowExecution) -> TriggerEvent:
        return trigger_event(ExecutionEvent.terminal(execution, self.instance_id, self.submission).payload())

    def _next_interval(self, interval: float) -> float:
        return min(interval * self.poll_backoff, self.max_poll_interval)

    def _resolve_deadline(self) -> None:
        """``end_time`` from Airflow's trigger timeout when only ``deadline_margin`` was given (the
        triggerer sets ``timeout_after`` before ``run``; it survives a triggerer restart)."""
        timeout_after = getattr(self, "timeout_after", None)
        if self.end_time is None and self.deadline_margin is not None and timeout_after is not None:
            self.end_time = timeout_after.timestamp() - self.deadline_margin

    def _seconds_left(self) -> float:
        return float("inf") if self.end_time is None else self.end_time - time.time()

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = AmcHook(amc_conn_id=self.amc_conn_id)
        interval, errors = self.poll_interval, 0
        last_status: str | None = ""
        self._resolve_deadline()
        try:
            if self.first_poll_delay > 0:  # the worker has just polled: no point in asking again at once
                delay = first_poll_wait(self.first_poll_delay)
                await asyncio.sleep(max(min(delay, self._seconds_left()), 0))
            async with await hook.get_async_client() as client:
                while True:
                    asked_wait = 0.0  # AMC's Retry-After, when longer than the client waits itself
                    try:
                        execution = await client.get_execution(
                            self.execution_id, instance_id=self.instance_id
                        )
                        errors = 0
                    except Exception as exc:
                        if isinstance(exc, AmcThrottledError) and exc.retry_after:
                            asked_wait = exc.retry_after
                        if is_permanent(exc):
                            yield self._event("error", f"{type(exc).__name__}: {exc}")
                            return
                        errors += 1  # transient: throttled, 5xx, network, malformed body
                        self.log.warning(
                            "Polling AMC execution %s failed (%d/%d in a row): %s",
                            self.execution_id,
                            errors,
                            self.max_consecutive_errors,
                            exc,
                        )
                        if errors >= self.max_consecutive_errors:
                            yield self._event("error", f"{type(exc).__name__}: {exc}")
                            return
                    else:
                        if AmcStatus.parse(execution.status).is_terminal:
                            yield self._terminal_event(execution)
                            return
                        # INFO when the status changes, DEBUG otherwise: cheap with 1,000 triggers.
                        level = logging.INFO if execution.status != last_status else logging.DEBUG
                        last_status = execution.status
                        self.log.log(
                            level,
                            "AMC execution %s is %s; next poll in %.0f s",
                            self.execution_id,
                            execution.status,
                            min(interval, max(self._seconds_left(), 0)),
                        )
                    if self._seconds_left() <= 0:
                        yield self._event(
                            "timeout",
                            f"AMC execution {self.execution_id} did not end before the deadline",
                        )
                        return
                    await asyncio.sleep(min(max(interval, asked_wait), self._seconds_left()))
                    interval = self._next_interval(interval)
        except Exception as exc:  # settings/connection problems: one clear message in the task log
            yield self._event("error", f"{type(exc).__name__}: {exc}")

    async def on_kill(self) -> None:
        """Cancel the AMC run when a user clears or marks the deferred task (Airflow 3.3+)."""
        if not self.cancel_on_kill:
            return
        try:
            cancelled = await AmcHook(amc_conn_id=self.amc_conn_id).acancel_execution(
                self.execution_id, instance_id=self.instance_id
            )
            self.log.info("AMC execution %s cancel requested: %s", self.execution_id, cancelled)
        except Exception as exc:
            self.log.warning("Could not cancel AMC execution %s: %s", self.execution_id, exc)
