"""template.yaml: what a security review checks, asserted on the CloudFormation the SAM transform makes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.stack.conftest import resources_of, run_tool, statements, tool
from tests.stack.sam_transform import load_template

# (path, method) -> the function that answers it: write routes on train, read routes on inference.
ROUTES = {
    ("/train", "post"): "TrainFunction",
    ("/predict", "post"): "InferenceFunction",
    ("/inference", "post"): "InferenceFunction",
    ("/models", "get"): "InferenceFunction",
    ("/models/{name}", "get"): "InferenceFunction",
    ("/models/{name}/versions/{version}", "get"): "InferenceFunction",
    ("/models/{name}/history", "get"): "InferenceFunction",
    ("/models/{name}/publish", "post"): "TrainFunction",
    ("/models/{name}/versions/{version}", "delete"): "TrainFunction",
    ("/models/{name}", "delete"): "TrainFunction",
    ("/models/{name}/versions/{version}/report", "get"): "InferenceFunction",
    ("/models/{name}/versions/{version}/export", "post"): "TrainFunction",
    ("/train/jobs", "get"): "InferenceFunction",  # job status reads (test_jobs_stack.py)
    ("/train/jobs/{job_id}", "get"): "InferenceFunction",
    # The Open Inference Protocol (KServe v2): read-only, on the inference function.
    ("/v2", "get"): "InferenceFunction",
    ("/v2/health/live", "get"): "InferenceFunction",
    ("/v2/health/ready", "get"): "InferenceFunction",
    ("/v2/models/{name}", "get"): "InferenceFunction",
    ("/v2/models/{name}/ready", "get"): "InferenceFunction",
    ("/v2/models/{name}/infer", "post"): "InferenceFunction",
    ("/v2/models/{name}/versions/{version}", "get"): "InferenceFunction",
    ("/v2/models/{name}/versions/{version}/ready", "get"): "InferenceFunction",
    ("/v2/models/{name}/versions/{version}/infer", "post"): "InferenceFunction",
}
# HEAD on every GET route (RFC 9110 9.3.2), to the same function, which answers it as GET.
ROUTES |= {(path, "head"): function for (path, method), function in list(ROUTES.items()) if method == "get"}
PATHS = {path for path, _ in ROUTES}
FIXED_NAME_PROPERTIES = {"BucketName", "FunctionName", "RoleName", "LogGroupName", "TableName", "QueueName"}


def test_cfn_lint_reports_nothing() -> None:
    result = run_tool([tool("sam", "cfn-lint"), "template.yaml"])
    assert result.returncode == 0 and result.stdout == "", result.stdout


def test_sam_validate_lint_passes() -> None:
    result = run_tool([tool("sam", "sam"), "validate", "--lint"], SAM_CLI_TELEMETRY="0")
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_fails_no_check_on_the_template_and_dockerfiles() -> None:
    files = ["template.yaml", "deployment_model/train/Dockerfile", "deployment_model/inference/Dockerfile"]
    args = [tool("checkov", "checkov"), "--skip-download", "--compact", "--output", "json"]
    result = run_tool([*args, *(f"--file={f}" for f in files)], BC_SKIP_MAPPING="TRUE")
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert {r["check_type"] for r in reports} == {"cloudformation", "dockerfile"}
    failed = [c["check_id"] for r in reports for c in r["results"]["failed_checks"]]
    assert failed == [] and result.returncode == 0
    assert all(r["summary"]["passed"] > 10 for r in reports)


def test_every_checkov_skip_says_why() -> None:
    for name, resource in load_template()["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            assert len(skip.get("comment", "")) > 20, f"{name}: explain why {skip['id']} does not apply"


def test_hadolint_passes_both_dockerfiles() -> None:
    dockerfiles = ["deployment_model/train/Dockerfile", "deployment_model/inference/Dockerfile"]
    result = run_tool([tool("sam", "hadolint"), *dockerfiles])
    assert result.returncode == 0, result.stdout


def test_each_route_goes_to_its_function_and_needs_an_api_key(cfn: dict[str, Any]) -> None:
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    assert set(paths) == PATHS
    for path in PATHS:
        declared = {method for p, method in ROUTES if p == path}
        assert set(paths[path]) == declared | {"options"}, f"{path}: only its methods, and the CORS preflight"
    for (path, method), function in ROUTES.items():
        operation = paths[path][method]
        assert operation["security"] == [{"api_key": []}]
        uri = json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
        assert f"{function}.Arn" in uri or f"${{{function}Alias" in uri  # the function, or its alias
        assert operation["x-amazon-apigateway-integration"]["type"] == "aws_proxy"


def test_the_v2_protocol_routes_are_read_only_calls_to_the_inference_function(cfn: dict[str, Any]) -> None:
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    v2_routes = {path: method for path, method in ROUTES if path.startswith("/v2") and method != "head"}
    assert len(v2_routes) == 9
    for path, method in v2_routes.items():
        heads = {"head"} if method == "get" else set()
        assert ROUTES[(path, method)] == "InferenceFunction" and set(paths[path]) == {method, "options"} | heads
        # A browser page (the local /docs against a stage) preflights GETs too: they carry x-api-key.
        preflight = paths[path]["options"]["x-amazon-apigateway-integration"]["responses"]["default"]
        allowed = preflight["responseParameters"]["method.response.header.Access-Control-Allow-Methods"]
        assert method.upper() in allowed.strip("'").split(","), allowed


def test_a_usage_plan_throttles_and_meters_the_key(cfn: dict[str, Any]) -> None:
    (plan,) = resources_of(cfn, "AWS::ApiGateway::UsagePlan").values()
    assert set(plan["Properties"]["Throttle"]) == {"RateLimit", "BurstLimit"}
    assert set(plan["Properties"]["Quota"]) == {"Limit", "Period"}
    assert len(resources_of(cfn, "AWS::ApiGateway::ApiKey")) == 1
    assert len(resources_of(cfn, "AWS::ApiGateway::UsagePlanKey")) == 1


def test_the_stage_logs_access_traces_and_throttles(cfn: dict[str, Any]) -> None:
    (stage,) = resources_of(cfn, "AWS::ApiGateway::Stage").values()
    properties = stage["Properties"]
    assert properties["TracingEnabled"] is True
    assert properties["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    (settings,) = properties["MethodSettings"]
    assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(settings)
    assert settings["DataTraceEnabled"] is False  # full request logging would put bodies in the logs


def test_cors_grants_no_origin_unless_one_is_given(cfn: dict[str, Any]) -> None:
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    for path in PATHS:
        preflight = api["Properties"]["Body"]["paths"][path]["options"]
        assert "security" not in preflight  # browsers send preflights without the API key
        origin = preflight["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"][
            "method.response.header.Access-Control-Allow-Origin"
        ]
        assert origin == {"Fn::If": ["CorsEnabled", {"Fn::Sub": "'${AllowedOrigin}'"}, {"Ref": "AWS::NoValue"}]}
    assert cfn["Conditions"]["CorsEnabled"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AllowedOrigin"}, ""]}]}
    assert cfn["Parameters"]["AllowedOrigin"]["Default"] == ""


def _resources(statement: dict[str, Any]) -> list[Any]:
    resource = statement["Resource"]
    return resource if isinstance(resource, list) else [resource]


def _service_prefixes_only(resource: Any) -> bool:
    """Models and job records: the keys the service owns; never a user's data."""
    return resource in ({"Fn::Sub": "${ModelBucket.Arn}/models/*"}, {"Fn::Sub": "${ModelBucket.Arn}/jobs/*"})


def test_the_inference_role_reads_and_lists_only_models_and_job_records_and_cannot_write(cfn: dict[str, Any]) -> None:
    granted = statements(cfn["Resources"]["InferenceFunctionRole"], "s3")
    actions = {action for statement in granted for action in statement["Action"]}
    assert actions == {"s3:GetObject", "s3:ListBucket"}, actions
    for statement in granted:
        if "s3:GetObject" in statement["Action"]:
            assert all(_service_prefixes_only(r) for r in _resources(statement)), statement
        if "s3:ListBucket" in statement["Action"]:
            assert _resources(statement) == [{"Fn::GetAtt": ["ModelBucket", "Arn"]}]
            assert statement["Condition"] == {"StringLike": {"s3:prefix": ["models/*", "jobs/*"]}}, statement


def test_the_train_role_touches_only_its_bucket_and_deletes_only_models_and_job_records(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["TrainFunctionRole"]
    granted = statements(role, "s3")
    actions = {action for statement in granted for action in statement["Action"]}
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject", "s3:ListBucket"} <= actions and "s3:*" not in actions
    for statement in granted:
        for resource in _resources(statement):
            assert resource != "*" and json.dumps(resource).count("ModelBucket") == 1, resource
        if "s3:DeleteObject" in statement["Action"]:
            assert all(_service_prefixes_only(r) for r in _resources(statement)), statement
        assert not any(a.startswith("s3:Delete") for a in statement["Action"] if a != "s3:DeleteObject")


def test_no_role_has_a_full_access_managed_policy_or_s3_wildcards(cfn: dict[str, Any]) -> None:
    for name, role in resources_of(cfn, "AWS::IAM::Role").items():
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            assert "FullAccess" not in json.dumps(arn), (name, arn)
        for statement in statements(role, "s3"):
            assert "s3:*" not in statement["Action"] and statement["Resource"] != "*", name


def test_the_bucket_policy_denies_requests_without_tls(cfn: dict[str, Any]) -> None:
    (policy,) = resources_of(cfn, "AWS::S3::BucketPolicy").values()
    (statement,) = policy["Properties"]["PolicyDocument"]["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == "*"
    assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert len(statement["Resource"]) == 2  # the bucket and its objects


def test_the_model_bucket_is_private_versioned_encrypted_and_retained(cfn: dict[str, Any]) -> None:
    bucket = cfn["Resources"]["ModelBucket"]
    assert bucket["DeletionPolicy"] == "Retain" and bucket["UpdateReplacePolicy"] == "Retain"
    properties = bucket["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert all(properties["PublicAccessBlockConfiguration"].values())
    (encryption,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == {"Ref": "NoncurrentVersionExpirationInDays"}


def test_no_fixed_physical_names(cfn: dict[str, Any]) -> None:
    for name, resource in cfn["Resources"].items():
        properties = resource.get("Properties", {})
        fixed = {key for key in FIXED_NAME_PROPERTIES & set(properties) if isinstance(properties[key], str)}
        assert not fixed, f"{name} fixes {fixed}: names collide across stacks and accounts"


def test_functions_are_images_with_their_limits_and_environment(cfn: dict[str, Any]) -> None:
    functions = resources_of(cfn, "AWS::Lambda::Function")
    train, inference = functions["TrainFunction"]["Properties"], functions["InferenceFunction"]["Properties"]
    assert train["PackageType"] == inference["PackageType"] == "Image"
    assert train["Timeout"] == 900 and inference["Timeout"] <= 30
    assert train["MemorySize"] == {"Ref": "TrainMemorySize"} and inference["MemorySize"] == {
        "Ref": "InferenceMemorySize"
    }
    for properties in (train, inference):
        assert properties["Architectures"] == [{"Ref": "Architecture"}]
        assert properties["Environment"]["Variables"]["MODEL_BUCKET"] == {"Ref": "ModelBucket"}
        assert properties["LoggingConfig"]["LogGroup"]["Ref"] in resources_of(cfn, "AWS::Logs::LogGroup")
    assert inference["Environment"]["Variables"]["MODEL_CACHE_TTL_SECONDS"] == {"Ref": "ModelCacheTtlSeconds"}


def test_every_log_group_has_a_retention(cfn: dict[str, Any]) -> None:
    groups = resources_of(cfn, "AWS::Logs::LogGroup")
    assert len(groups) == 3
    assert all(g["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionInDays"} for g in groups.values())


def test_images_build_from_one_context_with_one_dockerfile_each() -> None:
    resources = load_template()["Resources"]
    for name, dockerfile in [
        ("TrainFunction", "deployment_model/train/Dockerfile"),
        ("InferenceFunction", "deployment_model/inference/Dockerfile"),
    ]:
        assert resources[name]["Metadata"]["DockerContext"] == "."
        assert resources[name]["Metadata"]["Dockerfile"] == dockerfile


def test_outputs_give_what_a_user_needs_after_deploying(cfn: dict[str, Any]) -> None:
    expected = {"ApiUrl", "TrainUrl", "PredictUrl", "ModelBucketName", "ApiKeyId", "ApiKeyValueCommand"}
    assert expected | {"TrainFunctionName", "InferenceFunctionName"} <= set(cfn["Outputs"])


@pytest.mark.parametrize("environment", ["default", "prod"])
def test_samconfig_overrides_name_real_parameters_with_allowed_values(environment: str) -> None:
    import tomllib

    from tests.conftest import ROOT

    config = tomllib.loads((ROOT / "samconfig.toml").read_text())[environment]
    parameters = load_template()["Parameters"]
    deploy = config["deploy"]["parameters"]
    assert deploy["resolve_s3"] and deploy["resolve_image_repos"] and deploy["confirm_changeset"]
    for override in deploy["parameter_overrides"]:
        name, value = override.split("=", 1)
        assert name in parameters, f"{name} is not a template parameter"
        allowed = parameters[name].get("AllowedValues")
        assert allowed is None or value in map(str, allowed), f"{name}={value} not in {allowed}"


def test_the_api_invokes_an_inference_alias_that_can_keep_environments_warm(cfn: dict[str, Any]) -> None:
    """InferenceProvisionedConcurrency (default 0): the alias the API invokes gets that provisioned concurrency."""
    parameter = cfn["Parameters"]["InferenceProvisionedConcurrency"]
    assert parameter["Default"] == 0 and parameter["MinValue"] == 0
    assert cfn["Conditions"]["HasProvisionedConcurrency"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "InferenceProvisionedConcurrency"}, 0]}]
    }
    (alias_name, alias), *others = resources_of(cfn, "AWS::Lambda::Alias").items()
    assert not others and alias["Properties"]["FunctionName"] == {"Ref": "InferenceFunction"}
    assert alias["Properties"]["ProvisionedConcurrencyConfig"] == {
        "Fn::If": [
            "HasProvisionedConcurrency",
            {"ProvisionedConcurrentExecutions": {"Ref": "InferenceProvisionedConcurrency"}},
            {"Ref": "AWS::NoValue"},
        ]
    }
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    for (path, method), function in ROUTES.items():
        uri = json.dumps(api["Properties"]["Body"]["paths"][path][method]["x-amazon-apigateway-integration"]["uri"])
        assert (f"${{{alias_name}}}" in uri) == (function == "InferenceFunction"), (path, uri)
    for name, permission in resources_of(cfn, "AWS::Lambda::Permission").items():
        if name.startswith("InferenceFunction"):
            assert permission["Properties"]["FunctionName"] == {"Ref": alias_name}, name
