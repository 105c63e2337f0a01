"""The emulator's two clocks and its id streams (pure, no server)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from airflow_provider_amc.emulator import defaults as d
from airflow_provider_amc.emulator.clock import EmulatorClock
from airflow_provider_amc.emulator.config import EmulatorConfig
from airflow_provider_amc.emulator.signing import UrlRejected
from airflow_provider_amc.emulator.state import EmulatorState

FORM = {
    "grant_type": "refresh_token",
    "refresh_token": d.DEFAULT_REFRESH_TOKEN,
    "client_id": d.DEFAULT_CLIENT_ID,
    "client_secret": d.DEFAULT_CLIENT_SECRET,
}
START = datetime(2026, 3, 1, tzinfo=UTC)


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def state_at_speed(speed: float, scaled: bool = False) -> tuple[EmulatorState, FakeMonotonic]:
    real = FakeMonotonic()
    clock = EmulatorClock(start=START, speed=speed, monotonic=real)
    return EmulatorState(clock=clock, config=EmulatorConfig(scaled_lifetimes=scaled)), real


def test_token_issued_at_speed_50_is_valid_after_two_real_minutes() -> None:
    state, real = state_at_speed(50)
    token = str(state.tokens.grant(FORM, state.clock.instant())["access_token"])
    real.now += 120  # two real minutes = 6000 emulated seconds
    assert (state.clock.now() - START).total_seconds() == 6000
    assert state.tokens.is_valid(token, state.clock.instant())
    real.now += d.ACCESS_TOKEN_LIFETIME_SECONDS - 120  # one real hour after issue
    assert not state.tokens.is_valid(token, state.clock.instant())


def test_scaled_lifetimes_expire_after_72_real_seconds_at_speed_50() -> None:
    state, real = state_at_speed(50, scaled=True)
    token = str(state.tokens.grant(FORM, state.clock.instant())["access_token"])
    real.now += 71
    assert state.tokens.is_valid(token, state.clock.instant(), scaled=True)
    real.now += 1
    assert not state.tokens.is_valid(token, state.clock.instant(), scaled=True)


def test_wall_clock_ignores_speed_and_advance() -> None:
    real = FakeMonotonic()
    clock = EmulatorClock(start=START, speed=50, monotonic=real)
    clock.advance(10_000)
    clock.set_speed(7)
    real.now += 30
    assert (clock.wall_now() - START).total_seconds() == 30
    assert (clock.now() - START).total_seconds() == 10_000 + 30 * 7


def test_download_url_lifetime_follows_the_wall_clock() -> None:
    state, real = state_at_speed(50)
    path = "/downloads/a/b/part-00000.csv"
    query = dict(parse_qsl(urlsplit(state.signer.sign("http://x", path, state.lifetime_now())).query))
    real.now += 599
    state.clock.advance(100_000)
    state.signer.verify(path, query, state.lifetime_now())
    state.config.scaled_lifetimes = True
    with pytest.raises(UrlRejected, match="expired"):
        state.signer.verify(path, query, state.lifetime_now())


def test_ids_are_new_on_every_start_and_reset_unless_seeded() -> None:
    first, second = EmulatorState(), EmulatorState()
    assert first.new_uuid() != second.new_uuid()
    before = first.new_uuid()
    first.reset()
    assert first.new_uuid() != before
    assert first.fixed_seed is None and first.seed == 0  # result data keeps seed 0
    assert first.config.scaled_lifetimes is False  # wall-clock lifetimes by default


def test_a_seed_makes_ids_repeat_across_starts_and_resets() -> None:
    first, second = EmulatorState(seed=7), EmulatorState(seed=7)
    ids = [first.new_uuid() for _ in range(3)]
    assert ids == [second.new_uuid() for _ in range(3)]
    first.reset()
    assert [first.new_uuid() for _ in range(3)] == ids
    unseeded = EmulatorState()
    unseeded.reset(seed=7)
    assert [unseeded.new_uuid() for _ in range(3)] == ids


def test_the_cli_and_the_test_server_are_unseeded_by_default() -> None:
    from airflow_provider_amc.emulator.__main__ import parse_args
    from airflow_provider_amc.emulator.testing import EmulatorServer

    assert parse_args([]).seed is None and parse_args([]).scaled_lifetimes is False
    assert EmulatorServer().state.fixed_seed is None
    assert EmulatorServer(seed=3).state.fixed_seed == 3
