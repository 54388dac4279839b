"""Property: whatever a client sends to the v2 infer route, the handler answers 200 with consistent tensors, or a
4xx in the protocol's shape ({"error": "<message>"}); never a 5xx."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import Service, proxy_event

json_values = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=25,
)
numbers = st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(10**20), 10**20)
# Near-valid tensors: the mistakes a client makes (shape vs data, datatype, nesting, names), not just noise.
tensors = st.fixed_dictionaries(
    {
        "name": st.text(max_size=8),
        "shape": st.lists(st.integers(-2, 5) | st.just(10**12), max_size=3),
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BYTES", "BOOL", "fp64", ""]),
        "data": st.lists(numbers, max_size=12) | st.lists(st.lists(numbers, max_size=3), max_size=4) | json_values,
    },
    optional={"parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), json_values, max_size=2)},
)
# Well-formed tensors for this model (2 features), flat or nested, so that the success path is fuzzed too.
finite = st.floats(-1e6, 1e6) | st.integers(-(10**6), 10**6)
well_formed = st.integers(1, 6).flatmap(
    lambda rows: st.fixed_dictionaries(
        {
            "name": st.text(max_size=8),
            "shape": st.just([rows, 2]),
            "datatype": st.sampled_from(["FP64", "FP32"]),
            "data": st.lists(finite, min_size=2 * rows, max_size=2 * rows)
            | st.lists(st.lists(finite, min_size=2, max_size=2), min_size=rows, max_size=rows),
        }
    )
)
outputs = st.lists(
    st.fixed_dictionaries({"name": st.sampled_from(["label", "class_index", "probabilities", "score"])}), max_size=4
)
bodies = (
    st.fixed_dictionaries(
        {"inputs": st.lists(well_formed, min_size=1, max_size=1)},
        optional={"id": st.text(max_size=8), "outputs": outputs},
    )
    | st.fixed_dictionaries(
        {"inputs": st.lists(well_formed | tensors, max_size=2)},
        optional={"id": st.text(max_size=8) | st.integers(), "outputs": outputs, "parameters": json_values},
    )
    | st.dictionaries(st.sampled_from(["id", "inputs", "outputs", "parameters"]) | st.text(max_size=6), json_values)
    | json_values
)
raw_bodies = st.binary(max_size=200).map(lambda b: b.decode("latin-1")) | st.text(max_size=200)
paths = st.sampled_from(
    [
        "/v2/models/Model_ml/infer",
        "/v2/models/nope/infer",
        "/v2/models/Model_ml/versions/latest/infer",
        "/v2/models/Model_ml/versions/20200101T000000000000Z-00000000/infer",
    ]
)
fuzz = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_consistent_or_protocol_error(answer: dict[str, Any]) -> None:
    status, body = answer["statusCode"], json.loads(answer["body"])
    event("success" if status == 200 else "error")
    assert status < 500, body
    if status >= 400:
        assert set(body) == {"error"} and isinstance(body["error"], str) and body["error"]
        return
    rows = {output["shape"][0] for output in body["outputs"]}
    assert len(rows) == 1
    for output in body["outputs"]:
        size = output["shape"][0] * (output["shape"][1] if len(output["shape"]) == 2 else 1)
        assert len(output["data"]) == size


@fuzz
@given(body=bodies, path=paths)
def test_any_json_body(trained_local_service: Service, body: Any, path: str) -> None:
    assert_consistent_or_protocol_error(trained_local_service.predict(proxy_event(path, raw=json.dumps(body))))


@fuzz
@given(body=raw_bodies, base64_encoded=st.booleans())
def test_any_raw_body(trained_local_service: Service, body: str, base64_encoded: bool) -> None:
    event = proxy_event("/v2/models/Model_ml/infer", raw=body, base64_encoded=base64_encoded)
    assert_consistent_or_protocol_error(trained_local_service.predict(event))


@fuzz
@given(name=st.text(min_size=1, max_size=20).filter(lambda n: "/" not in n), version=st.text(max_size=30))
def test_any_model_name_and_version_in_the_path(trained_local_service: Service, name: str, version: str) -> None:
    for path in (f"/v2/models/{name}", f"/v2/models/{name}/versions/{version}/ready"):
        answer = trained_local_service.predict(proxy_event(path, method="GET"))
        assert answer["statusCode"] < 500, answer["body"]
