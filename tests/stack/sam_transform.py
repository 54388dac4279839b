"""Print the CloudFormation that SAM's transform makes of template.yaml, without AWS credentials.

Runs in the SAM tools venv (aws-sam-translator pins its own pydantic): `python sam_transform.py [PARAMS_JSON]`.
Functions get a placeholder ImageUri and managed policies resolve offline, as `sam validate` does.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
PLACEHOLDER_IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/ml-service:placeholder"
# The AWS managed policies SAM may attach, so the transform needs no IAM call.
OFFLINE_MANAGED_POLICIES = {
    "AWSLambdaBasicExecutionRole": "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "AWSXrayWriteOnlyAccess": "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}


class CloudFormationLoader(yaml.SafeLoader):
    """Reads CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...) as their long forms."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
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


CloudFormationLoader.add_multi_constructor("!", _intrinsic)


def load_template() -> dict[str, Any]:
    return yaml.load(TEMPLATE.read_text(), Loader=CloudFormationLoader)  # noqa: S506 - a SafeLoader subclass


class OfflinePolicyLoader:
    def load(self) -> dict[str, str]:
        return OFFLINE_MANAGED_POLICIES


def main() -> None:
    from samtranslator.translator.transform import transform

    parameters = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    template = load_template()
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["ImageUri"] = PLACEHOLDER_IMAGE
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # the transform needs a region, not credentials
    json.dump(transform(template, parameters, OfflinePolicyLoader()), sys.stdout)


if __name__ == "__main__":
    main()
