"""Training within a time budget: refused early when the grid cannot fit, never published late (no sleeps)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from deployment_model.api.deadlines import API_GATEWAY_TIMEOUT_SECONDS, PUBLISH_MARGIN_SECONDS, training_budget
from deployment_model.local.server import LocalContext
from deployment_model.ml.budget import Budget, TrainingTooLongError
from deployment_model.ml.training import iris_dataset, resolve_grids, train_model
from tests.conftest import Service, body_of, proxy_event

# The reproduction of issue 9.4: inside every cap, and it trained for 510 s.
SLOW_GRID = {"random_forest": {"n_estimators": list(range(481, 501)), "max_depth": list(range(91, 101))}}


class TickingClock:
    """Each reading is `step` seconds after the previous one: work 'takes' time without any sleep."""

    def __init__(self, step: float) -> None:
        self.now, self.step, self.readings = 0.0, step, 0

    def __call__(self) -> float:
        self.now += self.step
        self.readings += 1
        return self.now


class FakeContext:
    aws_request_id = "test"

    def __init__(self, remaining_seconds: float) -> None:
        self.remaining_seconds = remaining_seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.remaining_seconds * 1000)


def test_a_grid_that_cannot_finish_in_time_is_refused_after_its_first_fit() -> None:
    clock = TickingClock(1.0)  # every fit seems to take a second or two: 602 fits cannot fit in 24 s
    with pytest.raises(TrainingTooLongError) as refused:
        train_model(iris_dataset(), resolve_grids(SLOW_GRID), budget=Budget(24, clock))
    message = str(refused.value)
    assert "first 1 of 602 fits" in message and "24 s" in message
    assert '"async": true' in message and "before publishing anything" in message
    assert clock.readings <= 4  # stopped at the first fit's score, not after 600 fits


def test_a_spent_budget_refuses_before_any_fit() -> None:
    clock = TickingClock(1.0)
    with pytest.raises(TrainingTooLongError, match="before fitting candidate 'knn'"):
        train_model(iris_dataset(), budget=Budget(0.5, clock))
    assert clock.readings == 2  # the budget's start and one check: nothing fitted


def test_a_budget_that_holds_trains_the_same_model_as_no_budget() -> None:
    unbounded = train_model(iris_dataset())
    bounded = train_model(iris_dataset(), budget=Budget(10_000, TickingClock(1.0)))
    assert bounded.params == unbounded.params and bounded.metrics == unbounded.metrics
    assert bounded.candidate_scores == unbounded.candidate_scores


def test_the_pace_check_is_measured_per_candidate() -> None:
    # 3 fits + the refit of knn pass in a 40 s budget at one reading per second; the forest's 602 do not.
    clock = TickingClock(1.0)
    grids = {"knn": {"n_neighbors": [3]}, **SLOW_GRID}
    with pytest.raises(TrainingTooLongError, match="candidate 'random_forest'"):
        train_model(iris_dataset(), resolve_grids(grids), budget=Budget(40, clock))


@pytest.mark.parametrize(
    ("api_gateway", "remaining", "expected"),
    [
        (True, 900, API_GATEWAY_TIMEOUT_SECONDS - PUBLISH_MARGIN_SECONDS),  # the client waits 29 s at most
        (True, 10, 10 - PUBLISH_MARGIN_SECONDS),  # and never past the function's own timeout
        (False, 900, 900 - PUBLISH_MARGIN_SECONDS),  # direct invocation or job: the function's time
        (False, 3, 0),  # no room left to publish: nothing is trained
    ],
)
def test_the_budget_comes_from_the_caller_and_keeps_a_publishing_margin(
    api_gateway: bool, remaining: float, expected: float
) -> None:
    event: Any = proxy_event("/train", {}) if api_gateway else {}
    assert training_budget(event, FakeContext(remaining)).seconds == expected


@pytest.mark.parametrize(("waited", "expected"), [(10, 29 - 10 - 5), (0, 24), (3600 * 24, 24), (-60, 24)])
def test_time_already_spent_at_api_gateway_counts_against_its_29_s(waited: float, expected: float) -> None:
    # A cold start happens after API Gateway received the request; saved sample events carry an old time.
    event = proxy_event("/train", {})
    event["requestContext"]["requestTimeEpoch"] = 1_800_000_000_000
    budget = training_budget(event, FakeContext(900), wall_clock=lambda: 1_800_000_000 + waited)
    assert budget.seconds == expected


def _published(store_dir: Path) -> list[Path]:
    return list(store_dir.glob("models/*/latest.json"))


def test_through_api_gateway_a_training_too_long_is_a_422_and_publishes_nothing(
    local_service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = TickingClock(1.0)
    monkeypatch.setattr(
        local_service.train_module, "training_budget", lambda event, context: training_budget(event, context, clock)
    )
    answer = local_service.train(proxy_event("/train", {"candidates": SLOW_GRID}))
    body = body_of(answer)
    assert answer["statusCode"] == 422 and body["error"] == "training_too_long"
    assert '"async": true' in body["message"] and "24 s" in body["message"]
    assert _published(tmp_path / "store") == []


def test_a_direct_invocation_without_time_to_publish_is_refused_before_training(
    local_service: Service, tmp_path: Path
) -> None:
    context = LocalContext(function_name="train", deadline=time.monotonic() + 2)  # less than the margin
    answer = local_service.train_module.lambda_handler({}, context)
    assert answer["statusCode"] == 422 and answer["error"] == "training_too_long"
    assert _published(tmp_path / "store") == []
