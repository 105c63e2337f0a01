"""The process-wide token cache: single flight across threads, invalidation, expiry margin."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

from airflow_provider_amc.client.auth import TokenCache, parse_token


def test_threads_share_one_fetch() -> None:
    cache = TokenCache()
    fetches: list[int] = []

    def fetch() -> tuple[str, float]:
        fetches.append(1)
        time.sleep(0.05)
        return f"Atza|t{len(fetches)}", 3600.0

    with ThreadPoolExecutor(16) as pool:
        tokens = list(pool.map(lambda _: cache.get(("u", "c", "h"), fetch), range(64)))
    assert set(tokens) == {"Atza|t1"} and len(fetches) == 1


def test_invalidate_only_drops_the_refused_token() -> None:
    cache = TokenCache()
    values = iter(["Atza|a", "Atza|b"])
    key = ("u", "c", "h")
    assert cache.get(key, lambda: (next(values), 3600.0)) == "Atza|a"
    cache.invalidate(key, "Atza|someone-else-already-replaced")
    assert cache.peek(key) == "Atza|a"
    cache.invalidate(key, "Atza|a")
    assert cache.peek(key) is None
    assert cache.get(key, lambda: (next(values), 3600.0)) == "Atza|b"


def test_short_lived_token_is_refreshed_each_time() -> None:
    cache = TokenCache()
    calls = []
    for _ in range(3):
        cache.get(("u", "c", "h"), lambda: (calls.append(1) or "Atza|x", 60.0))  # type: ignore[func-returns-value]
    assert len(calls) == 3, "a token expiring within the 5-minute margin is never reused"


def test_parse_token_defaults_lifetime() -> None:
    assert parse_token({"access_token": "Atza|x"}) == ("Atza|x", 3600.0)
    assert parse_token({"access_token": "Atza|x", "expires_in": "120"}) == ("Atza|x", 120.0)


def test_no_thread_lock_held_while_async_waits() -> None:
    """The dict guard must be free while a sync fetch is in flight (it only protects the dicts)."""
    cache = TokenCache()
    started, release = threading.Event(), threading.Event()

    def slow() -> tuple[str, float]:
        started.set()
        release.wait(2)
        return "Atza|slow", 3600.0

    worker = threading.Thread(target=cache.get, args=(("u", "c", "1"), slow))
    worker.start()
    started.wait(2)
    assert cache.get(("u", "c", "2"), lambda: ("Atza|other", 3600.0)) == "Atza|other"
    release.set()
    worker.join(2)
    assert cache.peek(("u", "c", "1")) == "Atza|slow"


def test_a_different_client_secret_is_a_different_cache_entry() -> None:
    """A token fetched with the right secret must not serve a client configured with a wrong one."""
    from amc_client_fakes import make_settings

    from airflow_provider_amc.client.auth import token_key

    right, wrong = make_settings(), make_settings(client_secret="amzn1.oa2-cs.v1.wrong")
    assert token_key(right) != token_key(wrong)
    assert all(wrong.client_secret.get_secret_value() not in str(part) for part in token_key(wrong))
