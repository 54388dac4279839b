"""The stack, checked offline with the real AWS tools, installed in their own venvs by `make tools`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

TOOLS = ROOT / ".venv-tools"


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
    environment = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", **env}
    return subprocess.run([str(a) for a in args], cwd=ROOT, capture_output=True, text=True, env=environment)


def transform(parameters: dict[str, Any] | None = None) -> dict[str, Any]:
    """The CloudFormation SAM's transform makes of template.yaml (run by aws-sam-translator in the tools venv)."""
    script = Path(__file__).with_name("sam_transform.py")
    result = run_tool([tool("sam", "python"), script, json.dumps(parameters or {})])
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="session")
def cfn() -> dict[str, Any]:
    return transform()


def resources_of(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == resource_type}


def statements(role: dict[str, Any], service: str) -> list[dict[str, Any]]:
    """A role's policy statements acting on one service (e.g. "s3"), each with its Action as a list."""
    found = []
    for policy in role["Properties"].get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if any(action.startswith(f"{service}:") for action in actions):
                found.append({**statement, "Action": actions})
    return found
