"""A time budget for training: a deadline on a monotonic clock, checked between fits.

Training code never knows where the deadline comes from (API Gateway's 29 s, a Lambda context's remaining
time, an asynchronous job's): the caller builds a Budget and training refuses work it cannot finish in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


class TrainingTooLongError(Exception):
    """The training cannot finish within its time budget; nothing was published. The message says what to do."""


ASYNC_ADVICE = 'send the same request with "async": true to train it as an asynchronous job'


@dataclass
class Budget:
    """Seconds of work allowed from now, on a monotonic clock (injectable, so tests need no sleeps)."""

    seconds: float
    clock: Clock = time.monotonic
    started: float = field(init=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    @property
    def deadline(self) -> float:
        return self.started + self.seconds

    def elapsed(self) -> float:
        return self.clock() - self.started

    def remaining(self) -> float:
        return self.deadline - self.clock()

    def check(self, what: str) -> None:
        """Refuse to go on once the deadline has passed."""
        if self.remaining() <= 0:
            raise TrainingTooLongError(
                f"training did not finish {what} within its {self.seconds:.0f} s budget and was stopped "
                f"before publishing anything; {ASYNC_ADVICE}, or ask for fewer grid combinations or less data"
            )

    def check_pace(self, since: float, done: int, total: int, what: str) -> None:
        """After `done` of `total` similar fits begun at `since`, refuse early if the rest cannot fit in time.

        Refusing after the first fits instead of at the deadline: the client learns in a second, not in 29.
        """
        now = self.clock()
        if done <= 0:
            self.check(what)
            return
        finish = now + (now - since) / done * (total - done)
        if finish > self.deadline:
            needed = finish - self.started
            raise TrainingTooLongError(
                f"training {what} would take about {needed:.0f} s (measured on its first {done} of {total} fits), "
                f"more than the {self.seconds:.0f} s a synchronous training may take; it was stopped before "
                f"publishing anything: {ASYNC_ADVICE}, or ask for fewer grid combinations or less data"
            )


def unlimited(clock: Clock = time.monotonic) -> Budget:
    """No deadline worth the name: for tests, benchmarks and callers that bound time themselves."""
    return Budget(float("inf"), clock)
