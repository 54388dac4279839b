"""GET /docs in a real browser: Debian's headless Chromium, driven by selenium, against the local server.

The page renders the API's operations from its own assets (nothing from a CDN), and a request made from the page
(Try it out -> Execute on POST /predict) returns labels. Without Chromium the test is skipped locally and fails
under `make test` (REQUIRE_TOOLS=1), which installs it in CI (.ci/run).
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from deployment_model.local import docs_page
from tests.integration.chromium import headless_chromium, require
from tests.integration.conftest import Client, running_local_server

WAIT_SECONDS = 30


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The local server with the seed's model trained."""
    with running_local_server(tmp_path_factory.mktemp("docs") / "store") as client:
        client.service.train({})
        yield client


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    require(
        (docs_page.assets_dir() / "swagger-ui-bundle.js").is_file(),
        f"needs the Swagger UI assets in {docs_page.assets_dir()}: run `make swagger-ui`",
    )
    with headless_chromium(tmp_path_factory.mktemp("chromium-profile")) as driver:
        yield driver


def wait_for(driver: Any, condition: Any) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_SECONDS).until(condition)


def operation(driver: Any, method: str, path: str) -> Any:
    from selenium.webdriver.common.by import By

    xpath = f"//div[contains(@class, 'opblock-{method}')][.//*[@data-path='{path}']]"
    return wait_for(driver, lambda d: d.find_element(By.XPATH, xpath))


def test_the_page_and_its_assets_are_served_locally(server: Client) -> None:
    for path, content_type in [
        ("/docs", "text/html"),
        ("/docs/init.js", "text/javascript"),
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ]:
        if path != "/docs/init.js" and not (docs_page.assets_dir() / "swagger-ui-bundle.js").is_file():
            continue  # without `make swagger-ui`: the browser test below says so
        with urllib.request.urlopen(server.base_url + path, timeout=10) as response:  # noqa: S310 - loopback
            assert response.status == 200 and response.headers["Content-Type"].startswith(content_type)
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    status, _, body = server.request("GET", "/docs/../../etc/passwd")
    assert status == 404 and body["error"] == "route_not_found"
    status, _, body = server.request("GET", "/docs/index.html")
    assert status == 404 and "/docs" in body["message"]


def test_missing_assets_are_a_404_saying_how_to_install_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(docs_page.ASSETS_ENV, str(tmp_path))
    status, headers, body = docs_page.answer("/docs/swagger-ui-bundle.js")
    assert status == 404 and headers["Content-Type"] == ["application/json"]
    assert "make swagger-ui" in json.loads(body)["message"]


def test_the_document_declares_the_api_key_for_the_authorize_button(server: Client) -> None:
    status, _, document = server.request("GET", "/openapi.json")
    assert status == 200
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
    }
    assert document["security"] == [{"ApiKey": []}]


def test_the_page_renders_the_operations_offline(browser: Any, server: Client) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server.base_url + "/docs")
    for method, path in [
        ("post", "/predict"),
        ("post", "/train"),
        ("post", "/v2/models/{name}/infer"),
        ("get", "/v2/models/{name}"),
    ]:
        assert operation(browser, method, path).is_displayed()
    assert browser.find_element(By.CSS_SELECTOR, "button.authorize").is_displayed()
    loaded = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded and all(url.startswith(server.base_url) for url in loaded), loaded


def test_try_it_out_on_predict_returns_labels(browser: Any, server: Client) -> None:
    from selenium.webdriver.common.by import By

    predict = execute_predict(browser, server.base_url)
    assert answer_status(browser, predict) == "200"
    shown = predict.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_description pre")
    answer = json.loads(shown.text)
    assert answer["result"] == ["Not virginica", "virginica"] and answer["model_name"] == "Model_ml"


API_KEY = "docs-page-test-key"


@pytest.fixture(scope="module")
def keyed_server(server: Client) -> Iterator[str]:
    """The local server with API Gateway's key check on the API's routes (the page and document stay open),
    serving the same handlers and store as `server`."""

    def key_checked(handler: type[BaseHTTPRequestHandler]) -> type[BaseHTTPRequestHandler]:
        class KeyChecked(handler):  # type: ignore[misc, valid-type]
            def parse_request(self) -> bool:
                if not super().parse_request():
                    return False
                path = urlsplit(self.path).path
                if path == "/openapi.json" or docs_page.serves(path) or self.headers.get("x-api-key") == API_KEY:
                    return True
                self.close_connection = True
                self.send_error(403, explain="Forbidden: no valid x-api-key")
                return False

        return KeyChecked

    with running_local_server(wrap_handler=key_checked) as client:
        yield client.base_url


def execute_predict(browser: Any, base_url: str) -> Any:
    """Open the page, Try it out -> Execute on POST /predict; the operation's block, once it shows an answer."""
    from selenium.webdriver.common.by import By

    browser.get(base_url + "/docs")
    predict = operation(browser, "post", "/predict")
    predict.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait_for(browser, lambda _: predict.find_element(By.CSS_SELECTOR, "button.try-out__btn")).click()
    body = wait_for(browser, lambda _: predict.find_element(By.CSS_SELECTOR, "textarea.body-param__text"))
    body.clear()
    body.send_keys(json.dumps({"x_test": [[0.7, 1], [2.0, 5.5]]}))
    predict.find_element(By.CSS_SELECTOR, "button.execute").click()
    return predict


def answer_status(browser: Any, block: Any) -> str:
    from selenium.webdriver.common.by import By

    def answered(_: Any) -> Any:
        statuses = block.find_elements(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_status")
        return statuses and statuses[0].text.strip()

    return wait_for(browser, answered)


def test_the_authorize_button_sends_the_api_key(browser: Any, keyed_server: str) -> None:
    from selenium.webdriver.common.by import By

    assert answer_status(browser, execute_predict(browser, keyed_server)).startswith("403")
    browser.find_element(By.CSS_SELECTOR, "button.authorize").click()
    dialog = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".modal-ux"))
    dialog.find_element(By.CSS_SELECTOR, "input[type=text], input[type=password]").send_keys(API_KEY)
    dialog.find_element(By.CSS_SELECTOR, "button.modal-btn.auth.authorize").click()
    dialog.find_element(By.CSS_SELECTOR, "button.modal-btn.auth.btn-done").click()
    predict = operation(browser, "post", "/predict")
    predict.find_element(By.CSS_SELECTOR, "button.execute").click()

    def succeeded(_: Any) -> bool:
        return answer_status(browser, predict) == "200"

    wait_for(browser, succeeded)
    shown = predict.find_element(By.CSS_SELECTOR, ".live-responses-table tr.response .response-col_description pre")
    assert json.loads(shown.text)["result"] == ["Not virginica", "virginica"]


def test_a_deployed_stage_can_be_added_to_the_servers(browser: Any, server: Client) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    stage = "https://abc123.execute-api.eu-west-1.amazonaws.com/Prod"
    browser.get(f"{server.base_url}/docs?server={stage}")
    servers = wait_for(browser, lambda d: d.find_element(By.CSS_SELECTOR, ".servers select"))
    assert [option.get_attribute("value") for option in Select(servers).options] == [stage, "/"]


def test_chromium_was_not_downloaded() -> None:
    """selenium used the system's browser and driver: nothing fetched into its cache."""
    require(shutil.which("chromium") is not None, "needs Debian's chromium")
    assert not (Path.home() / ".cache" / "selenium" / "chrome").exists()
