"""Debian's headless Chromium driven by selenium, for the browser tests: never a browser download."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# This machine's network is closed: without these, Chromium's background connections fail, many at a time.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1400,1000",
]


def require(condition: bool, message: str) -> None:
    """Skip with the reason locally; under `make test` (REQUIRE_TOOLS=1) a missing tool is a failure."""
    if not condition:
        if os.environ.get("REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)


@contextmanager
def headless_chromium(profile: Path) -> Iterator[Any]:
    """A selenium driver for the system's Chromium with a fresh profile folder."""
    require(CHROMIUM.exists() and CHROMEDRIVER.exists(), "needs Debian's chromium and chromium-driver (apt-get)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never try to download a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
