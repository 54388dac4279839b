"""The API layer's generic behaviour, on a test function declared like every other route (tests/things_app.py)
and on the real handlers: trailing slashes, methods, 404/405 listing what is served, validation as 400s,
Retry-After, the garbage collector, malformed events, and responses whose size never follows the request's."""

from __future__ import annotations

import base64
import gc
import gzip
import json
import logging
from typing import Any

import pytest

from deployment_model.local.server import LocalContext
from tests import things_app
from tests.conftest import Service, body_of, proxy_event


def call(event: Any) -> dict[str, Any]:
    return things_app.lambda_handler(event, LocalContext(function_name="things"))


def event_for(
    method: str,
    path: str,
    body: Any = None,
    *,
    raw: str | None = None,
    query: dict[str, str] | None = None,
    **changes: Any,
) -> dict[str, Any]:
    return {**proxy_event(path, body, raw=raw, method=method, query=query), **changes}


def answer_of(event: Any) -> tuple[int, dict[str, Any], dict[str, list[str]]]:
    answer = call(event)
    return answer["statusCode"], body_of(answer), answer.get("multiValueHeaders") or {}


# --- trailing slashes and methods ---------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/", "//"])
def test_a_trailing_slash_is_the_same_route(suffix: str) -> None:
    assert answer_of(event_for("GET", "/things/a" + suffix))[:2] == (200, {"name": "a", "limit": 5})
    assert answer_of(event_for("POST", "/things" + suffix, {"size": 3}))[:2] == (200, {"created": 3})
    assert answer_of(event_for("POST", f"/things/a/resize{suffix}", {"size": 3}))[1] == {"name": "a", "size": 3}


def test_a_trailing_slash_reaches_the_real_operations(local_service: Service) -> None:
    local_service.train({})
    answer = local_service.predict(proxy_event("/predict/", {"x_test": [2.0, 5.5]}))
    assert answer["statusCode"] == 200 and body_of(answer)["result"] == "virginica"
    assert local_service.predict(proxy_event("/inference/", {"x_test": [2.0, 5.5]}))["statusCode"] == 200
    trained = local_service.train(proxy_event("/train/", {"candidates": ["sgd"]}))
    assert trained["statusCode"] == 200


@pytest.mark.parametrize("method", ["post", "Post", "pOST"])
def test_a_method_in_any_case_is_that_method(local_service: Service, method: str) -> None:
    local_service.train({})
    answer = local_service.predict(proxy_event("/predict", {"x_test": [2.0, 5.5]}, method=method))
    assert answer["statusCode"] == 200 and body_of(answer)["result"] == "virginica"
    assert answer_of(event_for(method.replace("ost", "ut").replace("OST", "UT"), "/things/a"))[0] == 405
    assert answer_of(event_for(method.lower().replace("post", "get"), "/things/a"))[0] == 200


def test_the_404_lists_every_route_the_function_serves() -> None:
    status, body, _ = answer_of(event_for("POST", "/nope", {}))
    assert status == 404 and body["error"] == "route_not_found"
    for route in ("POST /things", "GET /things/{name}", "DELETE /things/{name}", "POST /things/{name}/resize"):
        assert route in body["message"], body["message"]


def test_the_404_of_the_real_functions_lists_their_routes(local_service: Service) -> None:
    message = body_of(local_service.train(proxy_event("/nope", {})))["message"]
    assert "no route POST /nope" in message and "POST /train" in message
    message = body_of(local_service.predict(proxy_event("/nope", {})))["message"]
    assert "POST /predict" in message and "POST /inference" in message


def test_a_query_parameter_given_twice_is_a_400_saying_give_it_once(local_service: Service) -> None:
    """No route takes a list from the query: a repeated name (API Gateway passes every value) is refused by name,
    not read as a list that then fails as "not a valid integer"."""
    answer = local_service.predict(proxy_event("/models", method="GET", query={"limit": ["1", "2"]}))
    assert answer["statusCode"] == 400
    assert "query parameter 'limit' is given 2 times; give it once" in body_of(answer)["message"]
    assert local_service.predict(proxy_event("/models", method="GET", query={"limit": "1"}))["statusCode"] == 200


def test_the_405_names_the_method_and_what_is_allowed() -> None:
    status, body, headers = answer_of(event_for("PUT", "/things/a", {}))
    assert status == 405 and body["error"] == "method_not_allowed"
    assert "PUT is not allowed on /things/a" in body["message"] and "DELETE, GET" in body["message"]
    assert headers["Allow"] == ["DELETE, GET"]
    status, body, headers = answer_of(event_for("GET", "/things", None))
    assert status == 405 and headers["Allow"] == ["POST"]


# --- validation on any route is a 400 naming the field, with nothing from the request in the logs ------------


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (event_for("GET", "/things/a", query={"limit": "many"}), "limit"),
        (event_for("GET", "/things/a", query={"limit": "99"}), "limit"),
        (event_for("POST", "/things/a/resize", {"size": "big"}), "size"),
        (event_for("POST", "/things/a/resize", {"size": 3, "colour": "red"}), "colour"),
        (event_for("POST", "/things/a/resize", None), "body"),
        (event_for("POST", "/things/a/resize", raw="{not json"), "body"),
        (event_for("POST", "/things", {"size": 0}), "size"),
    ],
)
def test_validation_errors_on_any_route_are_400s_naming_the_field(event: dict[str, Any], field: str) -> None:
    status, body, _ = answer_of(event)
    assert status == 400 and body["error"] == "invalid_request", body
    assert field in body["message"]


def test_any_content_type_is_read_as_json_on_every_route() -> None:
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    for path in ("/things/a/resize", "/things"):
        event = event_for("POST", path, {"size": 3}, headers=form, multiValueHeaders={k: [v] for k, v in form.items()})
        assert answer_of(event)[0] == 200


def test_a_failed_validation_logs_no_client_value(caplog: pytest.LogCaptureFixture, capfd) -> None:
    with caplog.at_level(logging.DEBUG):
        answer_of(event_for("POST", "/things/a/resize", {"size": "SECRET-123456.789"}))
        answer_of(event_for("GET", "/things/a", query={"limit": "SECRET-LIMIT"}))
        answer_of(event_for("POST", "/things/SECRET-PATH/resize", raw="SECRET-BODY"))
    output = caplog.text + "".join(capfd.readouterr())
    assert "SECRET" not in output


# --- 503 always carries Retry-After; the garbage collector always comes back on --------------------------


@pytest.mark.parametrize("path", ["/things/down", "/things/busy"])
def test_every_503_carries_retry_after(path: str) -> None:
    status, body, headers = answer_of(event_for("GET", path))
    assert status == 503 and body["error"] and int(headers["Retry-After"][0]) > 0


def test_a_503_from_storage_on_the_real_operations_carries_retry_after(
    local_service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deployment_model.storage.objects import StoreUnavailableError

    def down(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailableError("storage unreachable")

    monkeypatch.setattr(local_service.inference_module.cache, "get", down)
    monkeypatch.setattr(local_service.train_module.registry, "create_version", down)
    for call_, path, body in (
        (local_service.predict, "/predict", {"x_test": [1, 2]}),
        (local_service.train, "/train", {"candidates": ["sgd"]}),
    ):
        answer = call_(proxy_event(path, body))
        assert answer["statusCode"] == 503 and int(answer["multiValueHeaders"]["Retry-After"][0]) > 0


@pytest.mark.parametrize(
    "event",
    [
        event_for("GET", "/things/a"),
        event_for("GET", "/things/bug"),
        event_for("GET", "/things/down"),
        event_for("GET", "/things/a", query={"limit": "x"}),
        event_for("PUT", "/things/a"),
        event_for("POST", "/nope"),
        event_for("POST", "/things", {"size": 3}),
        event_for("POST", "/things", raw="{oops"),
        {"size": 3},
        {"size": "x"},
        [1, 2],
        {"httpMethod": 5},
        {"httpMethod": "GET", "path": "/things/a", "headers": 5},
    ],
)
def test_the_garbage_collector_is_on_again_after_every_request(event: Any) -> None:
    assert gc.isenabled()
    call(event)
    assert gc.isenabled()


def test_the_garbage_collector_is_on_again_when_answering_itself_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any) -> None:
        raise RuntimeError("broken")

    monkeypatch.setattr(things_app.app, "resolve", broken)
    assert call(event_for("GET", "/things/a"))["statusCode"] == 500
    assert gc.isenabled()


# --- events as API Gateway would never send them, but a direct invocation may ---------------------------------


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/things/a", 200), ("POST", "/nope", 404)])
def test_an_event_with_http_method_but_no_request_context(method: str, path: str, status: int) -> None:
    event = {"httpMethod": method, "path": path, "body": None}
    assert answer_of(event)[0] == status


def test_an_event_with_http_method_but_no_request_context_on_the_real_operations(local_service: Service) -> None:
    local_service.train({})
    answer = local_service.predict({"httpMethod": "POST", "path": "/predict", "body": '{"x_test": [2.0, 5.5]}'})
    assert answer["statusCode"] == 200 and body_of(answer)["result"] == "virginica"
    assert local_service.predict({"httpMethod": "GET", "path": "/predict"})["statusCode"] == 405


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"httpMethod": 5}, "httpMethod"),
        ({"httpMethod": ""}, "httpMethod"),
        ({"path": 5}, "path"),
        ({"path": None}, "path"),
        ({"body": 5}, "body"),
        ({"isBase64Encoded": "maybe"}, "isBase64Encoded"),
        ({"headers": 5}, "headers"),
        ({"headers": {"a": 5}}, "headers"),
        ({"multiValueHeaders": {"a": "b"}}, "multiValueHeaders"),
        ({"queryStringParameters": []}, "queryStringParameters"),
        ({"requestContext": "x"}, "requestContext"),
    ],
)
def test_a_malformed_event_is_a_400_naming_the_event_field(changes: dict[str, Any], field: str) -> None:
    answer = call({**event_for("GET", "/things/a"), **changes})
    assert answer["statusCode"] == 400, answer
    assert field in json.loads(answer["body"])["message"]
    # An operation reads only the method, path and body: it names those, and answers despite the others.
    answer = call({**event_for("POST", "/things", {"size": 3}), **changes})
    if field in ("httpMethod", "path", "body", "isBase64Encoded"):
        assert answer["statusCode"] == 400 and field in json.loads(answer["body"])["message"]
    else:
        assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"created": 3}


@pytest.mark.parametrize("flag", ["false", "False", False, None])
def test_is_base64_encoded_false_as_a_string_reads_the_body_as_it_is(local_service: Service, flag: Any) -> None:
    local_service.train({})
    event = proxy_event("/predict", {"x_test": [2.0, 5.5]})
    event["isBase64Encoded"] = flag
    answer = local_service.predict(event)
    assert answer["statusCode"] == 200 and body_of(answer)["result"] == "virginica"


def test_is_base64_encoded_true_as_a_string_decodes_the_body(local_service: Service) -> None:
    local_service.train({})
    event = proxy_event("/predict", None, raw=base64.b64encode(b'{"x_test": [2.0, 5.5]}').decode())
    event["isBase64Encoded"] = "true"
    assert body_of(local_service.predict(event))["result"] == "virginica"


# --- messages that say what was wrong and what is accepted ------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (gzip.compress(b'{"x_test": [1, 2]}'), ["gzip", "uncompressed JSON"]),
        ("é".encode("latin-1") + b'{"x_test": [1, 2]}', ["not UTF-8", "JSON object in UTF-8"]),
    ],
    ids=["gzip", "latin-1"],  # printable test ids, which `make mutation` can select by name
)
def test_a_compressed_or_non_utf8_body_is_named_as_such(local_service: Service, raw: bytes, words: list[str]) -> None:
    event = proxy_event("/predict", None, raw=base64.b64encode(raw).decode(), base64_encoded=True)
    body = body_of(local_service.predict(event))
    assert body["error"] == "invalid_request"
    for word in words:
        assert word in body["message"], body["message"]
    assert "is not base64" not in body["message"]


def test_a_body_flagged_base64_that_is_not_says_so(local_service: Service) -> None:
    body = body_of(local_service.predict(proxy_event("/predict", None, raw="%%%", base64_encoded=True)))
    assert "isBase64Encoded" in body["message"] and "not valid base64" in body["message"]


@pytest.mark.parametrize(
    ("request_", "field", "words"),
    [
        ({"x_test": [1, 2], "model_version": "latest"}, "model_version", "omit model_version"),
        ({"x_test": [1, 2], "filename_model": "a b"}, "filename_model", "letters, digits"),
        ({"x_test": [1, 2], "filename_scaler": "-x"}, "filename_scaler", "starting with a letter or digit"),
        ({"x_test": [1, 2], "colour": 1}, "colour", "accepted fields: "),
        ({}, "x_test", "is required"),
    ],
)
def test_field_errors_say_what_is_accepted_in_words(
    local_service: Service, request_: dict[str, Any], field: str, words: str
) -> None:
    answer = local_service.predict(request_)
    assert answer["statusCode"] == 400
    assert f"{field}: " in answer["message"] and words in answer["message"], answer["message"]
    assert "\\d" not in answer["message"] and "[A-Za-z" not in answer["message"]  # no raw regex


# --- the size of an answer never follows the size of the request --------------------------------------------

MAX_ERROR_BYTES = 4096


def hostile_requests() -> list[tuple[str, Any]]:
    return [
        ("80,000 unknown keys", {**{f"k{i}": 1 for i in range(80_000)}, "x_test": [1, 2]}),
        ("one 1 MB unknown key", {"k" * 1_000_000: 1, "x_test": [1, 2]}),
        ("a 1 MB model name", {"x_test": [1, 2], "filename_model": "m" * 1_000_000}),
        ("a 1 MB bucket name", {"x_test": [1, 2], "name_bucket": "b" * 1_000_000}),
        ("10,000 bad rows", {"x_test": [["x"] * 2] * 10_000}),
        ("deep nesting", {"x_test": [1, 2], "filename_model": [[[["x"] * 1000] * 10] * 10]}),
    ]


class TestResponseSizeVsRequestSize:
    """Error answers are bounded (first few problems and a count), whatever the request holds."""

    @pytest.mark.parametrize(("label", "request_"), hostile_requests())
    def test_direct_invocation(self, local_service: Service, label: str, request_: Any) -> None:
        answer = local_service.predict(request_)
        assert answer["statusCode"] == 400, label
        assert len(json.dumps(answer)) <= MAX_ERROR_BYTES, label

    @pytest.mark.parametrize(("label", "request_"), hostile_requests())
    def test_api_gateway(self, local_service: Service, label: str, request_: Any) -> None:
        answer = local_service.predict(proxy_event("/predict", request_))
        assert answer["statusCode"] == 400, label
        assert len(answer["body"]) <= MAX_ERROR_BYTES, label

    def test_the_count_of_problems_is_told(self, local_service: Service) -> None:
        answer = local_service.predict({**{f"k{i}": 1 for i in range(80_000)}, "x_test": [1, 2]})
        assert len(answer["details"]) <= 10 and "80000 problems" in answer["message"]

    @pytest.mark.parametrize(
        "event",
        [
            event_for("GET", "/n" * 500_000),
            event_for("X" * 100_000, "/things/a"),
            event_for("PUT", "/things/" + "a" * 500_000),
            event_for("GET", "/things/a", query={f"q{i}": "x" for i in range(10_000)} | {"limit": "z" * 100_000}),
            event_for("POST", "/things/a/resize", {f"k{i}": 1 for i in range(50_000)}),
        ],
    )
    def test_routes_methods_and_queries(self, event: dict[str, Any]) -> None:
        answer = call(event)
        assert 400 <= answer["statusCode"] < 500
        assert len(answer["body"]) <= MAX_ERROR_BYTES


def test_a_bug_is_logged_with_where_it_happened_but_not_its_text(caplog: pytest.LogCaptureFixture, capfd) -> None:
    with caplog.at_level(logging.DEBUG):
        answer = call(event_for("GET", "/things/bug-SECRET", query={"limit": "3"}))
    assert answer["statusCode"] == 500
    [record] = [r for r in caplog.records if r.getMessage() == "unhandled error"]
    assert record.exception_type == "KeyError" and "things_app.py" in record.traceback  # enough to find the bug...
    assert record.exc_info is None and "SECRET" not in record.traceback  # ...not a text that may quote a request
    output = caplog.text + "".join(capfd.readouterr())
    assert "SECRET" not in output and "'limit': 3" not in output


def test_log_lines_carry_api_gateways_request_id_as_their_correlation_id(local_service: Service) -> None:
    """Logs of an API Gateway request are correlated by its requestContext.requestId; a direct invocation has
    none (and keeps none from the request before)."""
    from deployment_model.api.service import logger

    event = proxy_event("/models", method="GET")
    event["requestContext"] = {**event["requestContext"], "requestId": "req-0123"}
    assert local_service.predict(event)["statusCode"] == 200
    assert logger.get_correlation_id() == "req-0123"
    local_service.predict({"x_test": [0.7, 1.0]})
    assert logger.get_correlation_id() is None
