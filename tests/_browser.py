"""A real headless browser (Debian's chromium + chromium-driver, driven by selenium) for page and report tests.

Tests that need it call :func:`chromium` (a context manager yielding a selenium WebDriver). Where chromium,
chromedriver or selenium is missing the test is skipped with the reason, unless ``CARRISK_REQUIRE_BROWSER=1``
(set by ``.ci/run``, which installs them), where it fails instead: CI never silently skips a browser test.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def _missing(reason: str) -> None:
    if os.environ.get("CARRISK_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser test cannot run: {reason} (CARRISK_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 900) -> Iterator[Any]:
    """Yield a headless Chromium WebDriver with browser console logging enabled; quit it afterwards."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[dev]')")
    binary = shutil.which("chromium") or "/usr/bin/chromium"
    driver_path = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(binary) and os.path.exists(driver_path)):
        _missing("Debian's chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--window-size={width},{height}")
    with tempfile.TemporaryDirectory(prefix="carrisk-chromium-") as profile:
        options.add_argument(f"--user-data-dir={profile}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def console_errors(driver: Any) -> list[str]:
    """Severe messages from the browser console since the last call."""
    return [entry["message"] for entry in driver.get_log("browser") if entry.get("level") == "SEVERE"]
