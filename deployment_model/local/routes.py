"""The local server's route table, read from template.yaml as `sam local start-api` reads it.

Each function's Api events say which method and path it serves (path parameters as {name}, greedy ones as
{name+}, ANY for every method); its handler is the image's command (ImageConfig.Command, else the Dockerfile's
CMD) or, for a zip function, CodeUri + Handler. A route declared in the template therefore works locally with
no second table. Only the local server reads YAML (PyYAML is a local/dev dependency, not in the images).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
_PARAMETER = re.compile(r"\{([A-Za-z0-9_]+)(\+?)\}")
_CMD = re.compile(r"^\s*CMD\s+(\[.*\])\s*$", re.MULTILINE | re.IGNORECASE)


class TemplateError(Exception):
    """template.yaml cannot give the route table; the message names the function or field."""


@dataclass(frozen=True)
class Route:
    method: str  # upper case; ANY matches every method
    path: str  # as declared, e.g. /models/{name}
    function: str  # the function's logical ID, e.g. InferenceFunction
    pattern: re.Pattern[str] = field(compare=False)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def accepts(self, method: str) -> bool:
        return self.method in ("ANY", method.upper())


@dataclass(frozen=True)
class Match:
    route: Route
    path_parameters: dict[str, str]


@dataclass(frozen=True)
class RouteTable:
    handlers: dict[str, str]  # logical ID -> "module.attribute"
    routes: tuple[Route, ...]  # static paths first, then with parameters, then greedy: API Gateway's order

    def match(self, method: str, path: str) -> Match | None:
        """The route serving `method path` (a trailing slash is the same route), with its path parameters."""
        path = path.rstrip("/") or "/"
        for route in self.routes:
            found = route.pattern.match(path)
            if found and route.accepts(method):
                return Match(route, found.groupdict())
        return None

    def allowed_methods(self, path: str) -> list[str]:
        path = path.rstrip("/") or "/"
        return sorted({route.method for route in self.routes if route.pattern.match(path)})

    def names(self) -> list[str]:
        """Every route as `METHOD /path`, by path then method: what a 404 lists."""
        return [route.name for route in sorted(self.routes, key=lambda r: (r.path, r.method))]

    def function_named(self, name: str) -> str:
        """A logical ID from itself or its short form (`train` for TrainFunction), as the CLI names functions."""
        for logical_id in self.handlers:
            if name.lower() in (logical_id.lower(), logical_id.lower().removesuffix("function")):
                return logical_id
        raise KeyError(f"no function {name!r} in template.yaml; functions: {', '.join(sorted(self.handlers))}")


def _pattern(path: str) -> re.Pattern[str]:
    parts = _PARAMETER.split(path)  # literal, name, plus, literal, ...
    regex = "".join(
        re.escape(part) if i % 3 == 0 else (f"(?P<{part}>.+)" if parts[i + 1] else f"(?P<{part}>[^/]+)")
        for i, part in enumerate(parts)
        if i % 3 != 2
    )
    return re.compile(f"^{regex}$")


def _specificity(route: Route) -> tuple[int, int, str]:
    greedy = "+}" in route.path
    return (int(greedy), route.path.count("{"), route.path)


def _handler(logical_id: str, resource: dict[str, Any], globals_: dict[str, Any], root: Path) -> str:
    properties = resource.get("Properties") or {}
    command = (properties.get("ImageConfig") or {}).get("Command")
    if command:
        return str(command[0])
    metadata = resource.get("Metadata") or {}
    if properties.get("PackageType") == "Image" or "Dockerfile" in metadata:
        dockerfile = root / str(metadata.get("DockerContext", ".")) / str(metadata.get("Dockerfile", "Dockerfile"))
        try:
            commands = _CMD.findall(dockerfile.read_text())
            return str(json.loads(commands[-1])[0])
        except (OSError, IndexError, ValueError) as exc:
            raise TemplateError(f'{logical_id}: no handler: {dockerfile} has no CMD ["module.handler"]') from exc
    handler = properties.get("Handler") or globals_.get("Handler")
    if not isinstance(handler, str):
        raise TemplateError(f"{logical_id}: no handler: give ImageConfig.Command, a Dockerfile CMD or Handler")
    code_uri = str(properties.get("CodeUri") or globals_.get("CodeUri") or ".").strip("/")
    package = "" if code_uri in ("", ".") else code_uri.replace("/", ".") + "."
    return package + handler


def _cloudformation_loader() -> type:
    """A safe YAML loader (libyaml's when present) that reads CloudFormation's short tags (!Ref, !Sub, ...)."""
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = type("CloudFormationLoader", (base,), {})

    def intrinsic(loader_: Any, suffix: str, node: Any) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            return {suffix: loader_.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {suffix: loader_.construct_sequence(node, deep=True)}
        return {suffix: loader_.construct_mapping(node, deep=True)}

    loader.add_multi_constructor("!", intrinsic)
    return loader


@functools.cache
def load_route_table(template: Path = DEFAULT_TEMPLATE) -> RouteTable:
    """Read the template once (per path) and build the table."""
    import yaml

    try:
        document = yaml.load(template.read_text(), Loader=_cloudformation_loader())  # noqa: S506 - a SafeLoader
    except yaml.YAMLError as exc:
        raise TemplateError(f"{template} is not valid YAML: {exc}") from None
    except OSError as exc:
        raise TemplateError(f"cannot read {template}: {exc.strerror}; run from a clone of the project") from None
    resources = (document or {}).get("Resources") if isinstance(document, dict) else None
    if not isinstance(resources, dict):
        raise TemplateError(f"{template}: Resources must be a mapping of resources")
    globals_ = ((document.get("Globals") or {}).get("Function")) or {}
    handlers: dict[str, str] = {}
    routes: list[Route] = []
    for logical_id, resource in resources.items():
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::Serverless::Function":
            continue
        handlers[logical_id] = _handler(logical_id, resource, globals_, template.parent)
        for event in ((resource.get("Properties") or {}).get("Events") or {}).values():
            if not isinstance(event, dict) or event.get("Type") != "Api":
                continue
            properties = event.get("Properties") or {}
            path, method = str(properties.get("Path", "")), str(properties.get("Method", "")).upper()
            path = path.rstrip("/") or "/"
            routes.append(Route(method, path, logical_id, _pattern(path)))
    return RouteTable(handlers, tuple(sorted(routes, key=_specificity)))
