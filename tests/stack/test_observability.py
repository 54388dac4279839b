"""Dashboard and alarms in template.yaml: they cover what issue 14 lists, and none of them watches a metric
that the code never emits (a dead alarm stays OK forever)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.conftest import Service, start_service
from tests.stack.conftest import resources_of

PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9:.]+)\}")
Metric = tuple[str, str, frozenset[tuple[str, Any]]]  # namespace, name, dimensions


def emitted_metrics(output: str) -> set[Metric]:
    """Every (namespace, metric, dimensions) in the EMF documents a handler printed."""
    found = set()
    for line in output.splitlines():
        document = json.loads(line) if line.startswith('{"_aws"') else None
        if document is None:
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            for dimension_names in directive["Dimensions"]:
                dimensions = frozenset((name, document[name]) for name in dimension_names)
                found |= {(directive["Namespace"], m["Name"], dimensions) for m in directive["Metrics"]}
    return found


@pytest.fixture(scope="module")
def emitted(tmp_path_factory: pytest.TempPathFactory) -> set[Metric]:
    """Run every handler path that publishes a metric (train, cold and warm predict, drifted rows), with
    publishing on, and read what they printed."""
    import contextlib
    import io
    import os

    saved = dict(os.environ)
    os.environ.update(
        MODEL_STORE_DIR=str(tmp_path_factory.mktemp("store")),
        POWERTOOLS_METRICS_DISABLED="false",
        POWERTOOLS_LOG_LEVEL="WARNING",
    )
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output):
            service: Service = start_service()
            assert service.train({})["statusCode"] == 200
            assert service.predict({"x_test": [[0.7, 1.0], [40.0, 90.0]]})["statusCode"] == 200
            assert service.predict({"x_test": [1.0, 2.0]})["statusCode"] == 200
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return emitted_metrics(output.getvalue())


def _dashboard_body(template: dict[str, Any]) -> dict[str, Any]:
    (dashboard,) = resources_of(template, "AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    numbers = {"PredictLatencyP99ThresholdMs": "1000", "OutOfRangeShareThreshold": "0.1"}
    return json.loads(PLACEHOLDER.sub(lambda m: numbers.get(m.group(1), f"<{m.group(1)}>"), text))


def dashboard_metrics(template: dict[str, Any]) -> list[tuple[str, Metric]]:
    """(widget title, metric) for every metric row of the dashboard, its "." and "..." shorthands expanded."""
    metrics = []
    for widget in _dashboard_body(template)["widgets"]:
        previous: list[Any] = []
        for row in widget["properties"].get("metrics", []):
            items = [item for item in row if not isinstance(item, dict)]
            if not items:  # an expression row
                continue
            if items[0] == "...":
                items = previous[: len(previous) - (len(items) - 1)] + items[1:]
            else:
                items = [previous[i] if item == "." else item for i, item in enumerate(items)]
            previous = items
            dimensions = frozenset(zip(items[2::2], items[3::2], strict=True))
            metrics.append((widget["properties"]["title"], (items[0], items[1], dimensions)))
    return metrics


def _resolved(value: Any) -> Any:
    """A dimension value as the dashboard's placeholders spell it: !Ref X -> <X>, !GetAtt X.Y -> <X.Y>."""
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return value


def alarm_metrics(template: dict[str, Any]) -> dict[str, list[Metric]]:
    alarms: dict[str, list[Metric]] = {}
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        stats = [q["MetricStat"]["Metric"] for q in properties.get("Metrics", []) if "MetricStat" in q]
        if "MetricName" in properties:
            stats.append(properties)
        alarms[name] = [
            (
                s["Namespace"],
                s["MetricName"],
                frozenset((d["Name"], _resolved(d["Value"])) for d in s.get("Dimensions", [])),
            )
            for s in stats
        ]
    return alarms


def test_every_custom_metric_an_alarm_or_the_dashboard_names_is_emitted_by_the_code(
    cfn: dict[str, Any], emitted: set[Metric]
) -> None:
    globals_env = cfn["Resources"]["InferenceFunction"]["Properties"]["Environment"]["Variables"]
    namespace, service = globals_env["POWERTOOLS_METRICS_NAMESPACE"], globals_env["POWERTOOLS_SERVICE_NAME"]
    assert {m[0] for m in emitted} == {namespace}, "the code publishes under the namespace the stack gives it"
    watched = [(f"alarm {name}", m) for name, ms in alarm_metrics(cfn).items() for m in ms]
    watched += [(f"dashboard widget {title!r}", m) for title, m in dashboard_metrics(cfn)]
    custom = [(where, m) for where, m in watched if not m[0].startswith("AWS/")]
    assert len(custom) >= 8  # the test sees the custom metrics (a parsing slip would make it pass vacuously)
    dead = [(where, m) for where, m in custom if m not in emitted]
    assert dead == [], f"watched but never emitted: {dead}; emitted: {sorted(emitted)}"
    assert {("service", service)} == {d for m in emitted if m[1] != "ColdStart" for d in m[2]}


def test_the_alarms_cover_errors_throttles_latency_and_drift(cfn: dict[str, Any]) -> None:
    alarms = resources_of(cfn, "AWS::CloudWatch::Alarm")
    watched = alarm_metrics(cfn)
    by_metric = {name: {(ns, metric) for ns, metric, _ in ms} for name, ms in watched.items()}
    assert by_metric["ApiServerErrorRateAlarm"] == {("AWS/ApiGateway", "5XXError")}
    assert by_metric["InferenceErrorsAlarm"] == {("AWS/Lambda", "Errors")}
    assert ("FunctionName", "<InferenceFunction>") in watched["InferenceErrorsAlarm"][0][2]
    throttled = {dict(d)["FunctionName"] for _, _, d in watched["ThrottlesAlarm"]}
    assert throttled == {"<TrainFunction>", "<InferenceFunction>"}
    assert by_metric["PredictLatencyAlarm"] == {("AWS/ApiGateway", "Latency")}
    latency = alarms["PredictLatencyAlarm"]["Properties"]
    assert latency["Threshold"] == {"Ref": "PredictLatencyP99ThresholdMs"}
    assert {q["MetricStat"]["Stat"] for q in latency["Metrics"] if "MetricStat" in q} == {"p99"}
    drift = alarms["OutOfRangeShareAlarm"]["Properties"]
    assert by_metric["OutOfRangeShareAlarm"] == {("MlService", "OutOfRangeRows"), ("MlService", "PredictedRows")}
    assert drift["Threshold"] == {"Ref": "OutOfRangeShareThreshold"}
    assert {q["MetricStat"]["Period"] for q in drift["Metrics"] if "MetricStat" in q} == {3600}
    (share,) = [q for q in drift["Metrics"] if q.get("ReturnData")]
    assert share["Expression"] == "FILL(outofrange, 0) / predicted"  # requests without drift publish no count
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name  # no traffic is not an outage
        assert len(json.dumps(alarm["Properties"]["AlarmDescription"])) > 60, f"{name}: say what it means"


def test_api_metrics_name_this_api_stage_and_routes(cfn: dict[str, Any]) -> None:
    (api,) = resources_of(cfn, "AWS::ApiGateway::RestApi").values()
    (stage,) = resources_of(cfn, "AWS::ApiGateway::Stage").values()
    assert api["Properties"]["Name"] == {"Ref": "AWS::StackName"}
    assert stage["Properties"]["StageName"] == {"Ref": "StageName"}
    assert stage["Properties"]["MethodSettings"][0]["MetricsEnabled"] is True  # per-route latency exists
    routes = api["Properties"]["Body"]["paths"]
    for alarm_metrics_ in alarm_metrics(cfn).values():
        for namespace, _, dimensions in alarm_metrics_:
            if namespace != "AWS/ApiGateway":
                continue
            values = dict(dimensions)
            assert values["ApiName"] == "<AWS::StackName>" and values["Stage"] == "<StageName>"
            if "Resource" in values:
                assert values["Method"].lower() in routes[values["Resource"]]


def test_the_dashboard_shows_the_api_each_function_and_the_models(cfn: dict[str, Any]) -> None:
    shown = {(ns, name, dict(d).get("FunctionName")) for _, (ns, name, d) in dashboard_metrics(cfn)}
    for metric in ("Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"):
        for function in ("<TrainFunction>", "<InferenceFunction>"):
            assert ("AWS/Lambda", metric, function) in shown, (metric, function)
    names = {(ns, name) for ns, name, _ in shown}
    assert {("AWS/ApiGateway", m) for m in ("Count", "4XXError", "5XXError", "Latency")} <= names
    assert {
        ("MlService", m) for m in ("ModelLoadSeconds", "TrainingSeconds", "PredictedRows", "OutOfRangeRows")
    } <= names
    body = _dashboard_body(cfn)
    stats = {
        row[-1].get("stat")
        for w in body["widgets"]
        for row in w["properties"].get("metrics", [])
        if w["properties"].get("title", "").startswith("API latency")
    }
    assert stats == {"p50", "p99"}
    assert any("expression" in row[0] for w in body["widgets"] for row in w["properties"].get("metrics", [])), (
        "the out-of-range share is a metric-math expression"
    )


def test_alarms_go_to_an_encrypted_topic_that_emails_only_when_asked(cfn: dict[str, Any]) -> None:
    resources = cfn["Resources"]
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}  # a customer key: CloudWatch cannot use aws/sns
    key = resources["AlarmTopicKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    grants = {s["Principal"].get("Service"): s["Action"] for s in key["KeyPolicy"]["Statement"]}
    assert set(grants["cloudwatch.amazonaws.com"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail" and subscription["Properties"]["Protocol"] == "email"
    assert cfn["Conditions"]["HasAlarmEmail"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}
    assert cfn["Parameters"]["AlarmEmail"]["Default"] == ""
    assert all("Condition" not in a for a in resources_of(cfn, "AWS::CloudWatch::Alarm").values())


def test_the_dead_letter_queue_has_an_alarm_and_both_queues_a_widget(cfn: dict[str, Any]) -> None:
    queue_alarms = [
        a["Properties"]
        for a in resources_of(cfn, "AWS::CloudWatch::Alarm").values()
        if a["Properties"].get("Namespace") == "AWS/SQS"
    ]
    (dlq,) = [
        a
        for a in queue_alarms
        if a["Dimensions"][0]["Value"] == {"Fn::GetAtt": ["TrainingJobsDeadLetterQueue", "QueueName"]}
    ]
    assert dlq["MetricName"] == "ApproximateNumberOfMessagesVisible" and dlq["Threshold"] == 0
    assert dlq["ComparisonOperator"] == "GreaterThanThreshold"
    queues = {dict(d).get("QueueName") for _, (ns, _, d) in dashboard_metrics(cfn) if ns == "AWS/SQS"}
    assert queues == {"<TrainingJobsQueue.QueueName>", "<TrainingJobsDeadLetterQueue.QueueName>"}
