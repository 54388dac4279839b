"""The training budget exactly at its edges, on a hand-set clock: the deadline itself is spent, a pace that
finishes exactly on the deadline passes, and the pace is measured per fit done."""

import pytest

from deployment_model.ml.budget import Budget, TrainingTooLongError, unlimited


class SetClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_deadline_itself_is_spent_and_a_moment_before_is_not() -> None:
    clock = SetClock()
    budget = Budget(10, clock)
    assert budget.deadline == 110.0
    clock.now = 109.999
    budget.check("the grid")
    assert budget.remaining() == pytest.approx(0.001)
    clock.now = 110.0
    with pytest.raises(TrainingTooLongError, match=r"did not finish the grid within its 10 s budget"):
        budget.check("the grid")


def test_a_pace_that_ends_exactly_on_the_deadline_passes_and_one_later_is_refused() -> None:
    clock = SetClock()
    budget = Budget(40, clock)
    clock.now = 110.0  # 2 fits of 5 s: 8 more take 40 s, from 110 that is 150 > 140
    with pytest.raises(TrainingTooLongError, match=r"about 50 s \(measured on its first 2 of 10 fits\)"):
        budget.check_pace(since=100.0, done=2, total=10, what="of knn")
    budget = Budget(40, clock)  # started at 110: deadline 150
    clock.now = 120.0  # 2 fits in 10 s, 6 more: finishes at 150, exactly the deadline
    budget.check_pace(since=110.0, done=2, total=8, what="of knn")
    clock.now = 120.001
    with pytest.raises(TrainingTooLongError):
        budget.check_pace(since=110.0, done=2, total=8, what="of knn")


def test_before_any_fit_the_pace_check_is_the_deadline_check() -> None:
    clock = SetClock()
    budget = Budget(5, clock)
    budget.check_pace(since=100.0, done=0, total=1000, what="x")  # nothing measured yet: no estimate
    clock.now = 105.0
    with pytest.raises(TrainingTooLongError, match="within its 5 s budget"):
        budget.check_pace(since=100.0, done=0, total=1000, what="x")


def test_an_unlimited_budget_never_refuses() -> None:
    clock = SetClock()
    budget = unlimited(clock)
    clock.now = 1e300
    budget.check("x")
    budget.check_pace(since=0.0, done=1, total=10**9, what="x")
