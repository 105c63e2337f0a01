"""A headless Chromium for UI tests: Debian's ``chromium`` + ``chromium-driver``, driven by Selenium.

Selenium is told where both binaries are, so its driver manager never downloads a browser. Flags
keep the browser off the network except for the page under test (no component updates, sync,
background requests) and give every session a fresh profile directory.

Missing browser: the test is skipped on a developer machine, but fails when ``CI`` is set — CI
must run it (``scripts/ensure_browser.sh``, called by ``make test``, installs the packages).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("AMC_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("AMC_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,2400",
    "--lang=en-US",
)


def require_browser() -> None:
    """Skip (developer machine) or fail (CI) when the browser or its driver is missing."""
    missing = [
        path for path in (CHROMIUM, CHROMEDRIVER) if not (Path(path).is_file() and os.access(path, os.X_OK))
    ]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (test extra)")
    if not missing:
        return
    message = f"browser test needs {', '.join(missing)}: run scripts/ensure_browser.sh"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    """A Selenium WebDriver on a fresh profile; quits and removes the profile afterwards."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    require_browser()
    profile = tempfile.mkdtemp(prefix="amc-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(15)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
