"""How long a training may run, from where the request came: the Lambda side of ml/budget.py.

Through API Gateway the client waits at most 29 s (the integration timeout), whatever the function's own
timeout: a training still running after that would publish a version its client was told had failed. A direct
invocation (or an asynchronous job) may use the function's remaining time. Either way a margin is kept for
publishing, so a training never outlives its function in the middle of a write.
"""

from __future__ import annotations

import time
from typing import Any

from deployment_model.api.events import is_api_gateway_event
from deployment_model.ml.budget import Budget, Clock

API_GATEWAY_TIMEOUT_SECONDS = 29.0
PUBLISH_MARGIN_SECONDS = 5.0  # writing the version (three small objects and the pointer) plus the answer
LAMBDA_MAX_TIMEOUT_SECONDS = 900.0  # for a context that cannot say (a stand-in without the method)


def training_budget(event: Any, context: Any, clock: Clock | None = None, wall_clock: Clock = time.time) -> Budget:
    """The training budget for this invocation: the time left, minus the publishing margin."""
    remaining_millis = getattr(context, "get_remaining_time_in_millis", None)
    remaining = remaining_millis() / 1000 if remaining_millis else LAMBDA_MAX_TIMEOUT_SECONDS
    if is_api_gateway_event(event):
        remaining = min(remaining, API_GATEWAY_TIMEOUT_SECONDS - _waited_at_api_gateway(event, wall_clock))
    seconds = max(0.0, remaining - PUBLISH_MARGIN_SECONDS)
    return Budget(seconds) if clock is None else Budget(seconds, clock)


def _waited_at_api_gateway(event: dict[str, Any], wall_clock: Clock) -> float:
    """Seconds since API Gateway received the request (a cold start counts against its 29 s).

    Only trusted within 0-29 s: anything else is a saved sample event (events/*.json) or clock skew.
    """
    request_context = event.get("requestContext")  # a hand-written event may hold anything here
    received = request_context.get("requestTimeEpoch") if isinstance(request_context, dict) else None
    if not isinstance(received, int | float) or isinstance(received, bool):
        return 0.0
    waited = wall_clock() - received / 1000
    return waited if 0 <= waited <= API_GATEWAY_TIMEOUT_SECONDS else 0.0


def storage_seconds(event: Any, context: Any) -> float | None:
    """How long storage calls may take in all: until the function's time, or API Gateway's 29 s, runs out."""
    remaining_millis = getattr(context, "get_remaining_time_in_millis", None)
    seconds = remaining_millis() / 1000 if remaining_millis else None
    if is_api_gateway_event(event):
        seconds = API_GATEWAY_TIMEOUT_SECONDS if seconds is None else min(seconds, API_GATEWAY_TIMEOUT_SECONDS)
    return seconds
