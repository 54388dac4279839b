"""A function declared the way other routes are (Powertools' app.get / app.delete / app.post with <path>
parameters, plus one ServiceApp operation), to test the API layer's generic behaviour on routes it never saw."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from pydantic import BaseModel, ConfigDict, Field

from deployment_model.api.service import ApiError, ServiceApp, entry_point
from deployment_model.storage.objects import StoreUnavailableError

app = ServiceApp()


class Thing(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=1, le=100)


@app.operation("/things")
def create_thing(request: Annotated[Thing, Body()]) -> dict[str, Any]:
    return {"created": request.size}


@app.get("/things/<name>")
def get_thing(name: str, limit: Annotated[int, Query(ge=1, le=10)] = 5) -> dict[str, Any]:
    if name == "down":
        raise StoreUnavailableError("storage is down")
    if name == "busy":
        raise ApiError(HTTPStatus.SERVICE_UNAVAILABLE, "busy", "the thing is busy; retry")
    if name.startswith("bug"):
        raise KeyError(f"a bug with {name}")  # an exception text quoting a request, as real bugs' texts may
    return {"name": name, "limit": limit}


@app.delete("/things/<name>")
def delete_thing(name: str) -> dict[str, Any]:
    return {"deleted": name}


@app.post("/things/<name>/resize")
def resize_thing(name: str, request: Annotated[Thing, Body()]) -> dict[str, Any]:
    return {"name": name, "size": request.size}


lambda_handler = entry_point(app, direct_path="/things")
