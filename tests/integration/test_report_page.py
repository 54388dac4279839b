"""The report page in a real browser: Debian's headless Chromium, driven by selenium over the local server.

Never downloads a browser: selenium is pointed at /usr/bin/chromium and /usr/bin/chromedriver (apt-get install
chromium chromium-driver). Missing, the test is skipped here and fails under REQUIRE_TOOLS=1 (`make test`).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.chromium import headless_chromium
from tests.integration.conftest import Client


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    with headless_chromium(tmp_path / "chromium-profile") as driver:
        yield driver


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
