"""The gate between a stored version and traffic: a training publishes its version only when the rule allows.

`always` (the seed's behaviour), `never` (store only; publish later by hand), or `if_better` (its held-out
f1_macro is at least the published version's, on the same features); `min_f1_macro` is a floor for all.
The decision and the move are one compare-and-swap: if another writer publishes in between, decide again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from deployment_model.storage.objects import ArtifactIntegrityError
from deployment_model.storage.registry import ModelRegistry, PublishConflictError

PublishRule = Literal["always", "if_better", "never"]
_DECIDE_ATTEMPTS = 10


@dataclass(frozen=True)
class PublishDecision:
    published: bool
    reason: str  # a sentence a person can read


def _f1(metadata: Mapping[str, Any]) -> float | None:
    metrics = metadata.get("metrics")
    value = metrics.get("f1_macro") if isinstance(metrics, dict) else None
    return float(value) if isinstance(value, int | float) else None


def decide(
    candidate: Mapping[str, Any],
    published: Mapping[str, Any] | None,
    rule: PublishRule,
    min_f1_macro: float | None,
    published_problem: str | None = None,
) -> PublishDecision:
    """Whether `candidate` (a version's metadata) may replace `published` (None: nothing is published)."""
    f1 = _f1(candidate) or 0.0
    if min_f1_macro is not None and f1 < min_f1_macro:
        return PublishDecision(
            False, f"not published: its held-out f1_macro {f1:.4f} is below min_f1_macro {min_f1_macro}"
        )
    if rule == "never":
        return PublishDecision(False, "not published: the request said publish 'never'; publish it by hand when ready")
    if rule == "always":
        return PublishDecision(True, "published: the request said publish 'always'")
    if published_problem is not None:
        return PublishDecision(True, f"published: the published version cannot be served ({published_problem})")
    if published is None:
        return PublishDecision(True, "published: no version of this model was published yet")
    version = published.get("version")
    if published.get("feature_names") != candidate.get("feature_names"):
        return PublishDecision(
            False, f"not published: its features differ from those of the published version {version}"
        )
    current = _f1(published) or 0.0
    if f1 >= current:
        return PublishDecision(
            True, f"published: its held-out f1_macro {f1:.4f} is at least that of version {version} ({current:.4f})"
        )
    return PublishDecision(
        False, f"not published: its held-out f1_macro {f1:.4f} is below that of version {version} ({current:.4f})"
    )


def publish_trained_version(
    registry: ModelRegistry,
    metadata: Mapping[str, Any],
    rule: PublishRule,
    min_f1_macro: float | None,
    request_id: str | None,
) -> PublishDecision:
    """Decide against what is published now and publish in one compare-and-swap; decide again on a race."""
    name, version = metadata["name"], metadata["version"]
    for _ in range(_DECIDE_ATTEMPTS):
        pointer = registry.published_or_none(name)
        published, problem = None, None
        if pointer is not None and rule == "if_better":
            try:
                published = registry.get_version(name, pointer.version, pointer.metadata_sha256)
            except ArtifactIntegrityError as exc:
                problem = str(exc)
        decision = decide(metadata, published, rule, min_f1_macro, problem)
        if not decision.published:
            return decision
        expected = pointer.version if pointer else None
        try:
            registry.publish(
                name, version, reason=decision.reason, request_id=request_id, expected_version=expected, action="train"
            )
        except PublishConflictError:
            continue
        return decision
    raise PublishConflictError(f"model {name!r}: the published version kept changing while deciding; retry")
