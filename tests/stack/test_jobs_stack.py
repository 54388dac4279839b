"""template.yaml's training jobs: the queue, its dead-letter queue, the event source mapping, routes and roles,
asserted on the CloudFormation the SAM transform makes (cfn-lint, sam validate and checkov run on the whole
template in test_template.py)."""

from __future__ import annotations

import json
from typing import Any

from tests.stack.conftest import resources_of, statements
from tests.stack.test_template import ROUTES

GET_ROUTES = {path: function for (path, method), function in ROUTES.items() if path.startswith("/train/jobs")}

TRAIN_TIMEOUT = 900


def resolve(template: dict[str, Any], value: Any) -> Any:
    """A value through Fn::FindInMap, as CloudFormation would resolve it."""
    if isinstance(value, dict) and "Fn::FindInMap" in value:
        mapping, top, second = value["Fn::FindInMap"]
        return template["Mappings"][mapping][top][second]
    return value


def test_the_job_queue_is_encrypted_and_dead_letters_after_several_deliveries(cfn: dict[str, Any]) -> None:
    queues = resources_of(cfn, "AWS::SQS::Queue")
    assert set(queues) == {"TrainingJobsQueue", "TrainingJobsDeadLetterQueue"}
    queue, dlq = queues["TrainingJobsQueue"]["Properties"], queues["TrainingJobsDeadLetterQueue"]["Properties"]
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    # AWS's guidance for an SQS event source: visibility at least 6x the function's timeout.
    assert resolve(cfn, queue["VisibilityTimeout"]) >= 6 * TRAIN_TIMEOUT
    redrive = queue["RedrivePolicy"]
    assert redrive["deadLetterTargetArn"] == {"Fn::GetAtt": ["TrainingJobsDeadLetterQueue", "Arn"]}
    assert resolve(cfn, redrive["maxReceiveCount"]) >= 5  # throttled deliveries count too
    # Kept long enough to diagnose and redrive: longer than the queue's own retention, 14 days.
    assert resolve(cfn, dlq["MessageRetentionPeriod"]) == 14 * 24 * 3600
    assert resolve(cfn, dlq["MessageRetentionPeriod"]) > resolve(cfn, queue["MessageRetentionPeriod"])


def test_the_train_function_consumes_the_queue_one_job_at_a_time_with_bounded_concurrency(
    cfn: dict[str, Any],
) -> None:
    (mapping,) = resources_of(cfn, "AWS::Lambda::EventSourceMapping").values()
    properties = mapping["Properties"]
    assert properties["EventSourceArn"] == {"Fn::GetAtt": ["TrainingJobsQueue", "Arn"]}
    assert properties["FunctionName"] == {"Ref": "TrainFunction"}
    assert properties["BatchSize"] == 1
    assert properties["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert properties["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaxConcurrentTrainings"}}
    parameter = cfn["Parameters"]["MaxConcurrentTrainings"]
    assert parameter["Default"] == 2 and parameter["MinValue"] == 2  # Lambda's minimum for SQS


def test_the_worker_knows_what_the_queue_was_given(cfn: dict[str, Any]) -> None:
    train = resources_of(cfn, "AWS::Lambda::Function")["TrainFunction"]["Properties"]
    queue = cfn["Resources"]["TrainingJobsQueue"]["Properties"]
    variables = train["Environment"]["Variables"]
    assert train["Timeout"] == TRAIN_TIMEOUT
    assert variables["TRAINING_JOBS_QUEUE_URL"] == {"Ref": "TrainingJobsQueue"}
    assert variables["TRAINING_JOBS_MAX_RECEIVE_COUNT"] == queue["RedrivePolicy"]["maxReceiveCount"]
    assert variables["TRAINING_JOBS_QUEUE_RETENTION_SECONDS"] == queue["MessageRetentionPeriod"]
    inference = resources_of(cfn, "AWS::Lambda::Function")["InferenceFunction"]["Properties"]
    assert "TRAINING_JOBS_QUEUE_URL" not in inference["Environment"]["Variables"]


def test_the_train_role_may_send_to_and_consume_only_its_own_queue(cfn: dict[str, Any]) -> None:
    role = cfn["Resources"]["TrainFunctionRole"]
    assert not any("SQS" in json.dumps(arn) for arn in role["Properties"]["ManagedPolicyArns"])
    granted = statements(role, "sqs")
    actions = {action for statement in granted for action in statement["Action"]}
    assert {"sqs:SendMessage*", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"} <= actions
    assert not any(a in {"sqs:*", "sqs:CreateQueue", "sqs:PurgeQueue", "sqs:SetQueueAttributes"} for a in actions)
    for statement in granted:
        resource = json.dumps(statement["Resource"])
        assert '"TrainingJobsQueue"' in resource and "DeadLetter" not in resource, resource


def test_only_the_train_role_touches_the_queues(cfn: dict[str, Any]) -> None:
    for name, role in resources_of(cfn, "AWS::IAM::Role").items():
        if name != "TrainFunctionRole":
            assert statements(role, "sqs") == [], name
            assert not any("SQS" in json.dumps(arn) for arn in role["Properties"].get("ManagedPolicyArns", []))


def test_job_status_routes_are_gets_on_the_read_only_function(cfn: dict[str, Any]) -> None:
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    paths = api["Properties"]["Body"]["paths"]
    for path, function in GET_ROUTES.items():
        assert set(paths[path]) == {"get", "head", "options"}, path
        operation = paths[path]["get"]
        assert operation["security"] == [{"api_key": []}]
        uri = json.dumps(operation["x-amazon-apigateway-integration"]["uri"])
        assert f"{function}.Arn" in uri or f"${{{function}Alias" in uri  # the function, or its alias
    role = cfn["Resources"]["InferenceFunctionRole"]
    listing = [
        statement
        for policy in role["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        if statement.get("Action") == "s3:ListBucket"
    ]
    assert listing == [
        {
            "Sid": "ListModelsAndJobsOnly",
            "Effect": "Allow",
            "Action": "s3:ListBucket",
            "Resource": {"Fn::GetAtt": ["ModelBucket", "Arn"]},
            "Condition": {"StringLike": {"s3:prefix": ["models/*", "jobs/*"]}},
        }
    ]


def test_an_operator_finds_the_queues_in_the_outputs(cfn: dict[str, Any]) -> None:
    assert cfn["Outputs"]["TrainingJobsQueueUrl"]["Value"] == {"Ref": "TrainingJobsQueue"}
    assert cfn["Outputs"]["TrainingJobsDeadLetterQueueUrl"]["Value"] == {"Ref": "TrainingJobsDeadLetterQueue"}
