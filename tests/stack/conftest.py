"""The stack, checked offline: the real AWS tools (tools venvs) and the SAM transform run in-process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT

TEMPLATE = ROOT / "template.yaml"
TOOLS = ROOT / ".venv-tools"
PLACEHOLDER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-service:placeholder"

# The AWS managed policies SAM may attach, so the transform needs no IAM call (what `sam validate` does).
OFFLINE_MANAGED_POLICIES = {
    name: f"arn:aws:iam::aws:policy/{path}{name}"
    for path, name in [
        ("service-role/", "AWSLambdaBasicExecutionRole"),
        ("", "AWSXrayWriteOnlyAccess"),
        ("service-role/", "AmazonAPIGatewayPushToCloudWatchLogs"),
    ]
}


def tool(venv: str, name: str) -> Path:
    """A tool from a tools venv; `make test` builds them, so there a missing tool is a failure."""
    path = TOOLS / venv / "bin" / name
    if not path.exists():
        message = f"{path} is missing: run `make tools`"
        if os.environ.get("REQUIRE_TOOLS"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_tool(args: list[str | Path], **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **env}
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, env=environment)


class _CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...) as their long forms."""


def _intrinsic(loader: yaml.Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


class _OfflinePolicyLoader:
    def load(self) -> dict[str, str]:
        return OFFLINE_MANAGED_POLICIES


def transform(parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation that SAM's transform makes of template.yaml (images get a placeholder URI)."""
    from samtranslator.translator.transform import transform as sam_transform

    template = load_template()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["ImageUri"] = PLACEHOLDER_IMAGE
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # the transform needs a region, never credentials
        return sam_transform(template, parameters or {}, _OfflinePolicyLoader())


@pytest.fixture(scope="session")
def cfn() -> dict[str, Any]:
    return transform()


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}
