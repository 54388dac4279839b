"""Property: whatever a client sends, both handlers answer 2xx or 4xx with a JSON error naming the problem."""

from __future__ import annotations

import base64
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Service, proxy_event

FIELDS = ["x_test", "filename_model", "filename_scaler", "name_bucket", "model_version", "data_key", "target_column"]
json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=25,
)
bodies = st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), json_values, max_size=5) | json_values
raw_bodies = st.binary(max_size=200).map(lambda b: b.decode("latin-1")) | st.text(max_size=200)
fuzz = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_client_error_or_success(status: int, body: Any) -> None:
    assert status < 500, body
    if status >= 400:
        assert isinstance(body["error"], str) and isinstance(body["message"], str) and body["message"]


@fuzz
@given(body=bodies)
def test_any_json_body_through_api_gateway(trained_local_service: Service, body: Any) -> None:
    for call, path in ((trained_local_service.predict, "/predict"), (trained_local_service.train, "/train")):
        text = json.dumps(body)
        if path == "/train" and isinstance(body, dict) and not set(body) & {"data_key", "candidates"}:
            body = {**body, "candidates": ["sgd"]}  # keep trainings fast; validation is what is fuzzed
            text = json.dumps(body)
        answer = call(proxy_event(path, raw=text))
        assert_client_error_or_success(answer["statusCode"], json.loads(answer["body"]))


@fuzz
@given(body=raw_bodies, base64_encoded=st.booleans())
def test_any_raw_body_through_api_gateway(trained_local_service: Service, body: str, base64_encoded: bool) -> None:
    answer = trained_local_service.predict(proxy_event("/predict", raw=body, base64_encoded=base64_encoded))
    assert_client_error_or_success(answer["statusCode"], json.loads(answer["body"]))


@fuzz
@given(event=bodies)
def test_any_direct_invocation(trained_local_service: Service, event: Any) -> None:
    answer = trained_local_service.predict(event)
    assert_client_error_or_success(answer["statusCode"], answer)


def test_a_valid_body_base64_encoded_is_the_same_request(trained_local_service: Service) -> None:
    text = json.dumps({"x_test": [2.0, 5.5]})
    plain = trained_local_service.predict(proxy_event("/predict", raw=text))
    encoded = trained_local_service.predict(
        proxy_event("/predict", raw=base64.b64encode(text.encode()).decode(), base64_encoded=True)
    )
    assert json.loads(plain["body"])["result"] == json.loads(encoded["body"])["result"] == "virginica"


# --- any path, method, header and event shape, on the real functions and on routes declared like others' ---------

ROUTE_PATHS = ["/train", "/predict", "/inference", "/things", "/things/a", "/things/a/resize", "/", ""]
paths = (
    st.sampled_from(ROUTE_PATHS)
    | st.builds(lambda base, tail: base + tail, st.sampled_from(ROUTE_PATHS), st.sampled_from(["/", "//", "/x", "%2F"]))
    | st.text(alphabet=st.characters(codec="utf-8"), max_size=30).map(lambda text: "/" + text)
    | st.text(max_size=10)
)
methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE"]) | st.text(max_size=8)
methods = methods | methods.map(str.lower)
header_names = st.sampled_from(["Content-Type", "Content-Encoding", "Origin", "Accept", "Transfer-Encoding"])
header_values = st.sampled_from(["application/json", "application/x-www-form-urlencoded", "gzip", "text/plain", ""])
headers = st.dictionaries(header_names | st.text(max_size=10), header_values | st.text(max_size=20), max_size=4)
event_values = st.none() | st.booleans() | st.integers() | st.text(max_size=10) | st.lists(st.text(max_size=3))
events = st.fixed_dictionaries(
    {"httpMethod": methods, "path": paths, "headers": headers, "body": raw_bodies | st.none()},
    optional={
        "isBase64Encoded": st.sampled_from([True, False, "true", "false", "False", None]) | event_values,
        "queryStringParameters": st.dictionaries(st.text(max_size=6), st.text(max_size=6), max_size=3) | event_values,
        "requestContext": st.just({"stage": "Prod", "path": "/Prod/x"}) | event_values,
        "multiValueHeaders": st.dictionaries(st.text(max_size=6), st.lists(st.text(max_size=6))) | event_values,
        "pathParameters": event_values,
    },
)


@fuzz
@given(event=events)
def test_any_path_method_header_or_event_shape(trained_local_service: Service, event: dict[str, Any]) -> None:
    from tests import things_app
    from tests.unit.test_api_layer import call

    for handler in (trained_local_service.predict, trained_local_service.train, call):
        if event.get("path", "").rstrip("/") == "/train" and str(event.get("httpMethod")).upper() == "POST":
            continue  # a valid body would train: validation of /train bodies is fuzzed above
        answer = handler(event)
        assert_client_error_or_success(answer["statusCode"], json.loads(answer["body"]))
    assert things_app.app.short_paths  # the test function is the one declared in tests/things_app.py
