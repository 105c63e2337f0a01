"""lifecycle: the request identity, the Submission and the trigger event (no HTTP, no Postgres)."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_amc.client import CreateExecutionRequest, WorkflowExecution
from airflow_provider_amc.lifecycle import (
    ExecutionEvent,
    Submission,
    completed_at,
    executed_identity,
    window_view,
)

INSTANCE = "amcunit0001"


def submission(**fields: Any) -> Submission:
    fields.setdefault("workflow_id", "wf")
    fields.setdefault("time_window_type", "EXPLICIT")
    if fields["time_window_type"] == "EXPLICIT":
        fields.setdefault("time_window_start", "2026-03-01T00:00:00")
        fields.setdefault("time_window_end", "2026-03-02T00:00:00")
    fields.setdefault("parameter_values", {"advertiser": "A"})
    fields.setdefault("output_format", "CSV")
    return Submission.of(INSTANCE, CreateExecutionRequest(**fields))


def amc_answer(**fields: Any) -> WorkflowExecution:
    """An execution as AMC reports an EXPLICIT 2026-03-01 UTC day (flat camelCase body)."""
    body = {
        "workflowExecutionId": "e1",
        "workflowId": "wf",
        "status": "PENDING",
        "createTime": "2026-03-03T10:00:00Z",
        "timeWindowStart": "2026-03-01T00:00:00Z",
        "timeWindowEnd": "2026-03-02T00:00:00Z",
        "timeWindowStartOriginal": "2026-03-01T00:00:00",
        "timeWindowEndOriginal": "2026-03-02T00:00:00",
        "timeWindowTimeZoneOriginal": "UTC",
        "parameterValues": {"advertiser": "A"},
        **fields,
    }
    return WorkflowExecution.model_validate({k: v for k, v in body.items() if v is not None})


# ---- the identity ---------------------------------------------------------------------------------------
SAME_DAY = {
    "UTC": ("UTC", "2026-03-01T00:00:00", "2026-03-02T00:00:00"),
    "Etc/UTC": ("Etc/UTC", "2026-03-01T00:00:00", "2026-03-02T00:00:00"),
    "New York 19:00": ("America/New_York", "2026-02-28T19:00:00", "2026-03-01T19:00:00"),
}


@pytest.mark.parametrize("spelling", SAME_DAY.values(), ids=SAME_DAY.keys())
def test_one_utc_window_is_one_request_whatever_the_zone_spelling(spelling: tuple[str, str, str]) -> None:
    zone, start, end = spelling
    spelled = submission(time_window_time_zone=zone, time_window_start=start, time_window_end=end)
    assert spelled.fingerprint == submission().fingerprint
    assert (spelled.identity.window_start, spelled.identity.window_end) == (
        "2026-03-01T00:00:00Z",
        "2026-03-02T00:00:00Z",
    )
    # AMC's answer for that spelling: the same identity as the request's (lookup and load agree).
    answer = amc_answer(
        timeWindowStartOriginal=start, timeWindowEndOriginal=end, timeWindowTimeZoneOriginal=zone
    )
    assert executed_identity(INSTANCE, answer, "CSV").key == spelled.fingerprint
    assert spelled.matches(answer)


@pytest.mark.parametrize(
    "change",
    [
        {"time_window_time_zone": "America/New_York"},  # same wall times, other instants (14.7 b)
        {"parameter_values": {"advertiser": "B"}},  # 14.7 (c)
        {"parameter_values": {}},
        {"output_format": "PARQUET"},
        {"time_window_end": "2026-03-03T00:00:00"},
        {"workflow_id": "other_wf"},
    ],
    ids=["zone", "parameters", "no-parameters", "format", "window", "workflow"],
)
def test_each_part_of_the_request_changes_the_identity(change: dict[str, Any]) -> None:
    assert submission(**change).fingerprint != submission().fingerprint


def test_the_instance_is_part_of_the_identity() -> None:
    request = CreateExecutionRequest(
        workflow_id="wf",
        time_window_type="EXPLICIT",
        time_window_start="2026-03-01T00:00:00",
        time_window_end="2026-03-02T00:00:00",
    )
    assert Submission.of("amcother001", request).fingerprint != Submission.of(INSTANCE, request).fingerprint


@pytest.mark.parametrize(
    "answer",
    [
        {"parameterValues": {"advertiser": "B"}},
        {"parameterValues": {}},
        # The same local wall times, run in New York: AMC's UTC bounds are 5 hours later.
        {
            "timeWindowTimeZoneOriginal": "America/New_York",
            "timeWindowStart": "2026-03-01T05:00:00Z",
            "timeWindowEnd": "2026-03-02T05:00:00Z",
        },
        {"workflowId": "other_wf"},
        {"outputFormat": "PARQUET"},  # when AMC (the emulator) reports a format, it counts
        {"timeWindowStartOriginal": None, "timeWindowEndOriginal": None},  # a relative execution
    ],
    ids=["parameters", "no-parameters", "zone", "workflow", "format", "relative"],
)
def test_the_lookup_never_matches_another_request(answer: dict[str, Any]) -> None:
    execution = amc_answer(**answer)
    assert not submission().matches(execution)
    assert not submission().may_match(execution)


def test_utc_bounds_computed_from_original_when_amc_sends_none() -> None:
    answer = amc_answer(
        timeWindowStart=None,
        timeWindowEnd=None,
        timeWindowStartOriginal="2026-02-28T19:00:00",
        timeWindowEndOriginal="2026-03-01T19:00:00",
        timeWindowTimeZoneOriginal="America/New_York",
    )
    assert executed_identity(INSTANCE, answer, "CSV").key == submission().fingerprint


RELATIVE = {"time_window_type": "MOST_RECENT_DAY"}
RELATIVE_ANSWER = {
    "timeWindowStartOriginal": None,
    "timeWindowEndOriginal": None,
    "timeWindowStart": None,
    "timeWindowEnd": None,
}


def test_a_relative_window_is_resolved_by_amcs_bounds() -> None:
    requested = submission(**RELATIVE)
    assert not requested.identity.resolved
    assert requested.identity.unresolved_window == "MOST_RECENT_DAY@UTC"
    pending = amc_answer(**RELATIVE_ANSWER)
    running = amc_answer(
        **{
            **RELATIVE_ANSWER,
            "timeWindowStart": "2026-03-01T00:00:00Z",
            "timeWindowEnd": "2026-03-02T00:00:00Z",
        }
    )
    assert not executed_identity(INSTANCE, pending, "CSV").resolved
    resolved = executed_identity(INSTANCE, running, "CSV")
    # Resolved, a MOST_RECENT_DAY run is the same request as an explicit run of that UTC day.
    assert resolved.resolved and resolved.key == submission().fingerprint


def test_a_relative_candidate_may_match_but_never_surely() -> None:
    requested = submission(**RELATIVE)
    candidate = amc_answer(**RELATIVE_ANSWER)
    assert requested.may_match(candidate) and not requested.matches(candidate)
    assert not requested.may_match(amc_answer(**RELATIVE_ANSWER, parameterValues={"advertiser": "B"}))
    assert not requested.may_match(amc_answer(**RELATIVE_ANSWER, timeWindowTimeZoneOriginal="Asia/Tokyo"))
    assert requested.may_match(amc_answer(**RELATIVE_ANSWER, timeWindowTimeZoneOriginal="Etc/UTC"))
    assert not requested.may_match(amc_answer())  # an explicit execution is not a relative request


# ---- the submission --------------------------------------------------------------------------------------
def test_submission_round_trips_as_json_and_rejects_a_forged_fingerprint() -> None:
    original = submission()
    assert Submission.model_validate(original.as_dict()) == original
    assert Submission.load(original.as_dict()) == original
    forged = {**original.as_dict(), "parameter_values": {"advertiser": "B"}}
    assert Submission.load(forged) is None
    with pytest.raises(ValueError, match="fingerprint"):
        Submission.model_validate(forged)
    assert Submission.load({"fingerprint": "x"}) is None and Submission.load("nope") is None


def test_submission_is_validated_like_the_request() -> None:
    with pytest.raises(ValueError, match="time_window_end"):
        Submission.model_validate(
            {**submission().as_dict(), "time_window_end": "2026-02-01T00:00:00", "fingerprint": ""}
        )


def test_window_view_keeps_the_request_and_amcs_bounds() -> None:
    view = window_view(
        submission(**RELATIVE),
        amc_answer(
            **{
                **RELATIVE_ANSWER,
                "timeWindowStart": "2026-03-01T00:00:00Z",
                "timeWindowEnd": "2026-03-02T00:00:00Z",
            }
        ),
    )
    assert view == {
        "type": "MOST_RECENT_DAY",
        "start": None,
        "end": None,
        "time_zone": "UTC",
        "start_utc": "2026-03-01T00:00:00Z",
        "end_utc": "2026-03-02T00:00:00Z",
    }
    without = window_view(None, amc_answer())
    assert without["type"] == "EXPLICIT" and without["start"] == "2026-03-01T00:00:00"


def test_completed_at_is_amcs_time_and_only_once_terminal() -> None:
    assert completed_at(amc_answer(status="RUNNING", lastUpdatedTime="2026-03-03T10:05:00Z")) is None
    done = completed_at(amc_answer(status="cancelled", lastUpdatedTime="2026-03-03T10:05:00Z"))
    assert done is not None and done.isoformat() == "2026-03-03T10:05:00+00:00"


# ---- the trigger event
def test_event_round_trip_and_rejects_what_the_trigger_never_sends() -> None:
    event = ExecutionEvent.terminal(amc_answer(status="SUCCEEDED"), INSTANCE, submission())
    payload = event.payload()
    parsed = ExecutionEvent.parse(payload)
    assert parsed == event and parsed.status == "success"
    assert parsed.submission == submission() and parsed.workflow_execution().workflow_execution_id == "e1"
    assert ExecutionEvent.terminal(amc_answer(status="REJECTED"), INSTANCE).status == "failed"
    for bad in (
        None,
        [],
        {"status": "done", "execution_id": "e1"},
        {"status": "success"},
        {**payload, "x": 1},
    ):
        with pytest.raises(ValueError, match="event"):
            ExecutionEvent.parse(bad)
