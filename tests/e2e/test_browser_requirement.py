"""The browser test cannot silently vanish from CI: a missing browser fails it when ``CI`` is set."""

from __future__ import annotations

import browser
import pytest


@pytest.fixture
def no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(browser, "CHROMIUM", "/nonexistent/chromium")


def test_missing_browser_fails_in_ci(no_browser: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"/nonexistent/chromium.*ensure_browser"):
        browser.require_browser()


def test_missing_browser_skips_on_a_developer_machine(
    no_browser: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="ensure_browser"):
        browser.require_browser()


def test_the_system_browser_is_used() -> None:
    """Selenium is pointed at Debian's binaries: never a downloaded browser or driver."""
    assert (browser.CHROMIUM, browser.CHROMEDRIVER) == ("/usr/bin/chromium", "/usr/bin/chromedriver")
    assert {"--headless=new", "--no-sandbox", "--disable-background-networking"} <= set(browser.FLAGS)
