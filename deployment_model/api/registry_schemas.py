"""Request and response models of the model registry routes (/models...): list, show, history, publish, delete."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deployment_model.api.schemas import Metrics, ResponseModel, RowCounts, Version

Reason = Annotated[str, Field(min_length=1, max_length=1000, strict=True)]


class ModelListItem(ResponseModel):
    name: str
    published_version: str | None = Field(description="null when no version is published.")
    published_at: str | None = Field(description="When the published version was published (null if unknown).")
    versions: int = Field(description="How many versions are stored.")


class ModelsPage(ResponseModel):
    models: list[ModelListItem]
    next_token: str | None = Field(description="Pass as next_token for the next page; null on the last page.")


class VersionListItem(ResponseModel):
    version: str
    created_at: str | None
    published: bool
    candidate: str | None
    estimator: str | None
    params: dict[str, Any] | None
    metrics: Metrics | None
    rows: RowCounts | None
    training_data: str | None
    feature_names: list[str] | None
    labels: list[str] | None


class ModelDetail(ResponseModel):
    name: str
    published_version: str | None
    published_at: str | None
    versions: list[VersionListItem] = Field(description="Newest first.")
    next_token: str | None


class VersionDetail(ResponseModel):
    """A version's metadata as recorded at training, plus whether it is the published one."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: str
    published: bool


class HistoryEvent(ResponseModel):
    version: str
    previous_version: str | None
    at: str
    action: Literal["train", "publish", "rollback"]
    reason: str | None
    request_id: str | None


class History(ResponseModel):
    name: str
    events: list[HistoryEvent] = Field(description="Newest first; every change of the published version.")
    next_token: str | None


class PublishRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)  # built at first use: train only

    version: Version = Field(description="The version to publish.")
    reason: Reason | None = Field(default=None, description="Why, in words; kept in the history.")
    expected_version: Version | None = Field(
        default=None, description="Publish only if this is the published version now; else 409 publish_conflict."
    )


class PublishResponse(ResponseModel):
    name: str
    published_version: str
    previous_version: str | None


class DeletedVersion(ResponseModel):
    deleted: str


class DeletedModel(ResponseModel):
    deleted_versions: int
