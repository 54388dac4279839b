"""The error answers of api/errors.py at their edges: exact wording and order of the 404's route list, `Allow`,
`Retry-After` on every 503 and only there, the quoting limit and the detail cap exactly at their boundaries."""

import logging
from http import HTTPStatus

import pytest

from deployment_model.api.errors import (
    MAX_ERROR_DETAILS,
    MAX_QUOTED_CHARS,
    RETRY_AFTER_SECONDS,
    answer_for,
    error_answer,
    method_not_allowed_answer,
    quoted,
    route_not_found_answer,
    validation_answer,
)
from deployment_model.storage.objects import ModelNotFoundError, StoreUnavailableError


def test_the_404_lists_each_route_once_grouped_by_path_then_method() -> None:
    routes = ["POST /train", "GET /models/{name}", "DELETE /models/{name}", "POST /train", "GET /models"]
    status, body, headers = route_not_found_answer("PUT", "/nope", routes)
    assert (status, body["error"], headers) == (404, "route_not_found", {})
    assert body["message"] == (
        "no route PUT /nope; this API serves GET /models, DELETE /models/{name}, GET /models/{name}, POST /train"
    )
    assert route_not_found_answer("GET", "/x", ["GET /a"], server="this function")[1]["message"] == (
        "no route GET /x; this function serves GET /a"
    )


def test_the_405_names_the_allowed_methods_once_sorted_in_the_message_and_allow() -> None:
    status, body, headers = method_not_allowed_answer("PATCH", "/models/m", ["GET", "DELETE", "GET"])
    assert (status, body["error"]) == (405, "method_not_allowed")
    assert body["message"] == "PATCH is not allowed on /models/m; use DELETE, GET"
    assert headers == {"Allow": "DELETE, GET"}


@pytest.mark.parametrize("status", list(HTTPStatus))
def test_retry_after_comes_with_every_503_and_no_other_status(status: HTTPStatus) -> None:
    _, body, headers = error_answer(status, "code", "message")
    assert body == {"error": "code", "message": "message"}
    if status == HTTPStatus.SERVICE_UNAVAILABLE:
        assert headers == {"Retry-After": str(RETRY_AFTER_SECONDS)}
    else:
        assert "Retry-After" not in headers


def test_a_503_from_a_domain_error_carries_retry_after_and_is_logged_as_a_dependency_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test-error-answers")
    with caplog.at_level(logging.INFO, logger="test-error-answers"):
        status, body, headers = answer_for(StoreUnavailableError("S3 is slow"), "req-1", logger)
        assert (status, body["error"], headers) == (503, "storage_unavailable", {"Retry-After": "5"})
        assert [r.getMessage() for r in caplog.records] == ["request failed on a dependency"]
        caplog.clear()
        status, body, headers = answer_for(ModelNotFoundError("no model m"), "req-1", logger)
        assert (status, body, headers) == (404, {"error": "model_not_found", "message": "no model m"}, {})
        assert caplog.records == []  # a client's 4xx is no dependency failure


def test_quoting_cuts_only_past_its_limit() -> None:
    exact = "x" * MAX_QUOTED_CHARS
    assert quoted(exact) == exact
    longer = exact + "y"
    assert quoted(longer) == f"{exact}... ({MAX_QUOTED_CHARS + 1} characters)"
    assert quoted("abcdef", limit=5) == "abcde... (6 characters)" and quoted("abcde", limit=5) == "abcde"


def _missing(count: int) -> list[dict]:
    return [{"type": "missing", "loc": ("body", f"f{i}"), "msg": "Field required"} for i in range(count)]


def test_validation_lists_at_most_the_cap_and_counts_the_rest() -> None:
    _, body, _ = validation_answer(_missing(MAX_ERROR_DETAILS))
    assert len(body["details"]) == MAX_ERROR_DETAILS and "problems" not in body["message"]
    assert body["message"].startswith("invalid request: f0: is required; f1: is required")
    _, body, _ = validation_answer(_missing(MAX_ERROR_DETAILS + 1))
    assert len(body["details"]) == MAX_ERROR_DETAILS
    assert body["message"].startswith(f"invalid request: {MAX_ERROR_DETAILS + 1} problems; the first 10: f0: is")


def test_a_field_is_named_without_its_source_unless_the_source_is_all_there_is() -> None:
    errors = [
        {"type": "missing", "loc": ("body", "x_test", 0), "msg": "m"},
        {"type": "missing", "loc": ("body",), "msg": "m"},
        {"type": "missing", "loc": (), "msg": "m"},
        {"type": "missing", "loc": ("x_test",), "msg": "m"},
    ]
    _, body, _ = validation_answer(errors)
    assert [d["field"] for d in body["details"]] == ["x_test.0", "body", "body", "x_test"]
