#!/usr/bin/env python3
"""Writes template.yaml's operations block: a p90 latency alarm per route and
the CloudWatch dashboard, from the functions template.yaml declares and the
metric names the functions write (shared/src/telemetry.rs).

    python3 dev/operations.py          # rewrite the block in place
    python3 dev/operations.py --check  # exit 1 if the block is out of date

The block sits between the two marker lines below; everything else in
template.yaml is written by hand. A test (tests/api/template.rs) checks the
alarms against the route table, so a new route without its alarm fails.
"""
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"
BEGIN = "  # ---------------------------------------------------------------- operations (dev/operations.py writes this block)\n"
END = "  # ---------------------------------------------------------------- end of operations\n"

NAMESPACE = "Allotment"


def api_functions(text):
    """Logical ids of the functions behind API routes, in template order
    (the $default 404 function excluded: nothing to watch there)."""
    names = []
    for match in re.finditer(r"^  (\w+)Function:\n    Type: AWS::Serverless::Function\n(.*?)(?=^  \S|\Z)", text, re.S | re.M):
        name, body = match.group(1), match.group(2)
        if "Type: HttpApi" in body and "Path: $default" not in body:
            names.append(name)
    return names


def alarm_actions(indent):
    pad = " " * indent
    return (
        f"{pad}AlarmActions: !If [NotifyAlarms, [!If [HasAlarmTopicArn, !Ref AlarmTopicArn, !Ref AlarmTopic]], !Ref AWS::NoValue]\n"
        f"{pad}OKActions: !If [NotifyAlarms, [!If [HasAlarmTopicArn, !Ref AlarmTopicArn, !Ref AlarmTopic]], !Ref AWS::NoValue]\n"
    )


def latency_alarm(name):
    return (
        f"  {name}LatencyAlarm:\n"
        f"    Type: AWS::CloudWatch::Alarm\n"
        f"    Properties:\n"
        f"      AlarmDescription: !Sub \"{name}: p90 latency over ${{LatencyP90AlarmMs}} ms for 3 of 5 minutes (README, Operations)\"\n"
        f"      Namespace: {NAMESPACE}\n"
        f"      MetricName: Latency\n"
        f"      Dimensions:\n"
        f"        - Name: Service\n"
        f"          Value: !Ref AWS::StackName\n"
        f"        - Name: Function\n"
        f"          Value: {name}\n"
        f"      ExtendedStatistic: p90\n"
        f"      Period: 60\n"
        f"      EvaluationPeriods: 5\n"
        f"      DatapointsToAlarm: 3\n"
        f"      Threshold: !Ref LatencyP90AlarmMs\n"
        f"      ComparisonOperator: GreaterThanThreshold\n"
        f"      TreatMissingData: notBreaching\n"
        + alarm_actions(6)
        + "\n"
    )


def search(metric, stat, dims="Service,Function", extra=""):
    query = f"{{{NAMESPACE},{dims}}} MetricName=\"{metric}\" Service=\"${{AWS::StackName}}\"{extra}"
    return [{"expression": f"SEARCH('{query}', '{stat}', 300)", "label": "", "id": re.sub(r"\W", "", metric.lower() + stat.lower())}]


def ours(metric, function, stat="Sum", label=None):
    return [NAMESPACE, metric, "Service", "${AWS::StackName}", "Function", function, {"stat": stat, "label": label or metric}]


def widget(title, metrics, x, y, w=8, h=6, kind="timeSeries", stacked=False):
    return {
        "type": "metric",
        "x": x,
        "y": y,
        "width": w,
        "height": h,
        "properties": {
            "title": title,
            "region": "${AWS::Region}",
            "view": kind,
            "stacked": stacked,
            "period": 300,
            "metrics": metrics,
        },
    }


def expression_metrics(rows):
    return [[{"expression": e["expression"], "label": e["label"], "id": e["id"]}] for e in rows]


def dashboard():
    widgets = [
        {"type": "text", "x": 0, "y": 0, "width": 24, "height": 1,
         "properties": {"markdown": "## Allotment ${AWS::StackName}: what was provisioned (business), how fast and how well each route answered, and what DynamoDB charged and refused. README, Operations, says what each means."}},
        # Business KPIs.
        widget("Packs (provisioned, re-synced, moved)", [
            ours("PacksProvisioned", "PostMinutes"), ours("PacksResynced", "PostMinutes"), ours("PacksMoved", "MoveMinutes")], 0, 1),
        widget("Payments created, by status", expression_metrics(search("PaymentsCreated", "Sum", "Service,Function,Status")), 8, 1),
        widget("Gift claims, by answer", expression_metrics(search("GiftClaims", "Sum", "Service,Function,Outcome")), 16, 1),
        widget("Wallet deposits (count, units)", [ours("Deposits", "DepositWallet"), ours("DepositedUnits", "DepositWallet")], 0, 7),
        widget("Ferry subscriptions (migrated, skipped)", [ours("SubscriptionsMigrated", "PostFerrySubscriptions"), ours("SubscriptionsSkipped", "PostFerrySubscriptions")], 8, 7),
        widget("Domain events (published, dead-lettered)", [ours("EventsPublished", "PublishEvents"), ours("EventsDeadLettered", "PublishEvents"), ours("StreamRecordsRetried", "PublishEvents")], 16, 7),
        # Requests.
        widget("Idempotency-Key outcomes", expression_metrics(search("IdempotencyKeys", "Sum", "Service,Function,Outcome")), 0, 13),
        widget("Requests per route", expression_metrics(search("Requests", "Sum")), 8, 13),
        widget("Cold starts per route", expression_metrics(search("ColdStart", "Sum")), 16, 13),
        widget("Latency p50 per route (ms)", expression_metrics(search("Latency", "p50")), 0, 19),
        widget("Latency p90 per route (ms)", expression_metrics(search("Latency", "p90")), 8, 19),
        widget("Latency p99 per route (ms)", expression_metrics(search("Latency", "p99")), 16, 19),
        widget("API answers (all, 4xx, 5xx)", [
            ["AWS/ApiGateway", "Count", "ApiId", "${Api}", {"stat": "Sum"}],
            ["AWS/ApiGateway", "4xx", "ApiId", "${Api}", {"stat": "Sum"}],
            ["AWS/ApiGateway", "5xx", "ApiId", "${Api}", {"stat": "Sum"}]], 0, 25),
        widget("5xx per route", expression_metrics(search("ServerErrors", "Sum")), 8, 25),
        widget("4xx per route", expression_metrics(search("ClientErrors", "Sum")), 16, 25),
        # DynamoDB.
        widget("Table capacity consumed (units)", [
            ["AWS/DynamoDB", "ConsumedReadCapacityUnits", "TableName", "${Table}", {"stat": "Sum"}],
            ["AWS/DynamoDB", "ConsumedWriteCapacityUnits", "TableName", "${Table}", {"stat": "Sum"}]], 0, 31),
        widget("Write capacity per route (units)", expression_metrics(search("ConsumedWriteCapacity", "Sum")), 8, 31),
        widget("Read capacity per route (units)", expression_metrics(search("ConsumedReadCapacity", "Sum")), 16, 31),
        widget("DynamoDB throttles per route", expression_metrics(search("DynamoDBThrottles", "Sum")), 0, 37),
        widget("DynamoDB retries per route", expression_metrics(search("DynamoDBRetries", "Sum")), 8, 37),
        widget("Failed conditions and transaction conflicts", expression_metrics(
            search("DynamoDBConditionalCheckFailures", "Sum") + search("DynamoDBTransactionConflicts", "Sum")), 16, 37),
        widget("Lambda errors and throttles (all functions)", [
            ["AWS/Lambda", "Errors", {"stat": "Sum"}],
            ["AWS/Lambda", "Throttles", {"stat": "Sum"}]], 0, 43),
        widget("Events publisher iterator age (ms)", [
            ["AWS/Lambda", "IteratorAge", "FunctionName", "${PublishEventsFunction}", {"stat": "Maximum"}]], 8, 43),
    ]
    body = json.dumps({"widgets": widgets}, indent=2)
    return (
        "  Dashboard:\n"
        "    Type: AWS::CloudWatch::Dashboard\n"
        "    Properties:\n"
        "      DashboardName: !Sub \"${AWS::StackName}-operations\"\n"
        "      DashboardBody: !Sub |\n"
        + "".join(f"        {line}\n" for line in body.splitlines())
        + "\n"
    )


def block(text):
    out = [BEGIN, "\n"]
    out.append(
        "  # The topic alarms notify when AlarmEmail is given and AlarmTopicArn is\n"
        "  # not (an address is asked to confirm its subscription first).\n"
        "  AlarmTopic:\n"
        "    Type: AWS::SNS::Topic\n"
        "    Condition: CreateAlarmTopic\n"
        "    Metadata:\n"
        "      checkov:\n"
        "        skip:\n"
        "          - id: CKV_AWS_26\n"
        "            comment: CloudWatch cannot publish to a topic under the AWS-managed SNS key (its policy does not admit cloudwatch.amazonaws.com); alarm notifications carry no secret\n"
        "    Properties:\n"
        "      Subscription:\n"
        "        - Protocol: email\n"
        "          Endpoint: !Ref AlarmEmail\n\n"
    )
    out.append("  # p90 latency per route, from the functions' own Latency metric (EMF).\n")
    for name in api_functions(text):
        out.append(latency_alarm(name))
    out.append(dashboard())
    out.append(END)
    return "".join(out)


def main():
    text = TEMPLATE.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"{TEMPLATE}: the operations markers are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = head + block(text) + tail
    if "--check" in sys.argv:
        if new != text:
            sys.exit("template.yaml's operations block is out of date: run python3 dev/operations.py")
        return
    TEMPLATE.write_text(new)


if __name__ == "__main__":
    main()
