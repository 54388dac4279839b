"""The report page in a real browser: Debian's headless Chromium, driven by selenium over the local server.

Never downloads a browser: selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver (apt-get install
chromium chromium-driver). Missing, the test is skipped here and fails under REQUIRE_TOOLS=1 (`make test`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Client

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _missing(reason: str) -> None:
    if os.environ.get("REQUIRE_TOOLS"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed: pip install -e '.[dev]'")
    for path in (CHROMIUM, CHROMEDRIVER):
        if not path.exists():
            _missing(f"{path} is missing: apt-get install -y chromium chromium-driver")
    monkeypatch.setenv("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser or driver
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def at_path(document: Any, path: str) -> Any:
    for part in path.split("."):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document


def test_the_report_page_loads_its_pictures_and_shows_the_numbers_of_the_json(
    local_server: Client, browser: Any
) -> None:
    from selenium.webdriver.common.by import By

    status, _, trained = local_server.post("/train", {"candidates": ["knn", "sgd", "logistic_regression"]})
    assert status == 200
    path = f"/models/Model_ml/versions/{trained['model_version']}/report"
    status, _, answer = local_server.request("GET", f"{path}?format=json")
    assert status == 200
    report = answer["report"]

    browser.get(local_server.base_url + path)
    assert trained["model_version"] in browser.title
    images = browser.find_elements(By.TAG_NAME, "img")
    assert len(images) == 2
    for image in images:
        loaded = browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
        assert loaded > 0, image.get_attribute("alt")  # decoded, under the page's Content-Security-Policy

    cells = browser.find_elements(By.CSS_SELECTOR, "td[data-path]")
    stats_per_feature = len(report["feature_stats"][0]) - 1
    expected_cells = 2 + 4 + 2 * 4 + 3 * 2 + 2 * stats_per_feature  # metrics, matrix, per class, candidates, stats
    assert len(cells) == expected_cells
    for cell in cells:
        value, text = at_path(report, cell.get_attribute("data-path")), cell.text
        if isinstance(value, int):
            assert text == str(value), cell.get_attribute("data-path")
        else:
            assert float(text) == pytest.approx(value, abs=5e-5), cell.get_attribute("data-path")
    page = browser.find_element(By.TAG_NAME, "body").text
    assert report["training_data"]["sha256"] in page
    assert all(label in page for label in report["labels"])
