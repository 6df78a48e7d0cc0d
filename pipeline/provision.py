"""Create or check every AWS resource the pipeline needs; safe to run again and again.

    python -m pipeline.provision            # create what is missing, fix attributes, report drift
    python -m pipeline.provision --check    # change nothing; exit 1 if anything differs

Resources (names from settings, one source of truth for code, docs and templates):
the upload bucket and its event notification to the events queue, the work bucket, the events
queue with its DLQ, one queue per task stage with its DLQ, and the dead-letter queue.  Against an
existing account it reports drift: visibility timeouts too short for the task time limits,
missing redrive policies, duplicate or overlapping S3 event notification configurations.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from pipeline import aws
from pipeline.aws import error_code
from pipeline.settings import (
    DEAD_LETTER_QUEUE,
    EVENTS_QUEUE,
    STAGE_QUEUES,
    Settings,
    get_settings,
)

logger = logging.getLogger(__name__)

#: seconds a message stays in a working queue / in a DLQ or the dead-letter queue
RETENTION_WORK_S = 4 * 24 * 3600
RETENTION_DLQ_S = 14 * 24 * 3600
#: seconds; the bridge only parses and enqueues, so its messages need little time
EVENTS_VISIBILITY_S = 60
#: id of our notification configuration on the upload bucket
NOTIFICATION_ID = "filesearch-events"
#: S3 events the pipeline subscribes to
NOTIFICATION_EVENTS = ("s3:ObjectCreated:*", "s3:ObjectRemoved:*")
#: prefix in the work bucket for claim-checked extracted text; expires after a week
EXTRACTED_PREFIX = "extracted/"
EXTRACTED_EXPIRY_DAYS = 7


@dataclass(frozen=True)
class QueueSpec:
    """One SQS queue as the pipeline expects it."""

    logical: str
    name: str
    attributes: dict[str, str]
    #: physical name of the DLQ that catches this queue's crashes/poison messages
    dlq: str | None = None


def queue_specs(settings: Settings) -> list[QueueSpec]:
    """Every queue, DLQs first (a redrive policy needs its target to exist)."""
    dlq_attrs = {"MessageRetentionPeriod": str(RETENTION_DLQ_S)}
    specs: list[QueueSpec] = []
    for logical in (EVENTS_QUEUE, *STAGE_QUEUES):
        specs.append(QueueSpec(f"{logical}-dlq", settings.dlq_name(logical), dict(dlq_attrs)))
    specs.append(QueueSpec(DEAD_LETTER_QUEUE, settings.queue_name(DEAD_LETTER_QUEUE),
                           {**dlq_attrs, "VisibilityTimeout": "60"}))
    specs.append(QueueSpec(EVENTS_QUEUE, settings.queue_name(EVENTS_QUEUE),
                           {"VisibilityTimeout": str(EVENTS_VISIBILITY_S),
                            "MessageRetentionPeriod": str(RETENTION_WORK_S)},
                           settings.dlq_name(EVENTS_QUEUE)))
    for logical in STAGE_QUEUES:
        specs.append(QueueSpec(logical, settings.queue_name(logical),
                               {"VisibilityTimeout": str(settings.visibility_timeout),
                                "MessageRetentionPeriod": str(RETENTION_WORK_S)},
                               settings.dlq_name(logical)))
    return specs


@dataclass
class Report:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    drift: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.drift

    def lines(self) -> list[str]:
        return ([f"created  {x}" for x in self.created] + [f"updated  {x}" for x in self.updated]
                + [f"DRIFT    {x}" for x in self.drift])


def provision(settings: Settings | None = None, *, check: bool = False) -> Report:
    """Create or check every resource; with ``check`` nothing is changed.

    Drift that provisioning fixes itself (wrong attributes) is reported as ``updated``; drift
    it must not touch (someone else's overlapping notification) stays in ``drift``.
    """
    s = settings or get_settings()
    report = Report()
    arns: dict[str, str] = {}
    for spec in queue_specs(s):
        arns[spec.name] = _ensure_queue(s, spec, arns, report, check)
    for bucket in (s.upload_bucket, s.work_bucket):
        _ensure_bucket(s, bucket, report, check)
    if not check or s.work_bucket in _existing_buckets(s):
        _ensure_work_lifecycle(s, report, check)
    _ensure_notification(s, arns.get(s.queue_name(EVENTS_QUEUE), ""), report, check)
    return report


def _ensure_queue(s: Settings, spec: QueueSpec, arns: dict[str, str], report: Report,
                  check: bool) -> str:
    sqs = aws.sqs(s)
    wanted = dict(spec.attributes)
    if spec.dlq:
        wanted["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": arns.get(spec.dlq, ""),
                                              "maxReceiveCount": s.max_receive_count})
    try:
        url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
    except Exception as exc:
        if error_code(exc) not in ("AWS.SimpleQueueService.NonExistentQueue",
                                   "QueueDoesNotExist"):
            raise
        if check:
            report.drift.append(f"queue {spec.name} is missing")
            return ""
        url = sqs.create_queue(QueueName=spec.name, Attributes=wanted)["QueueUrl"]
        report.created.append(f"queue {spec.name}")
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    differences = _attribute_drift(s, spec, wanted, attrs)
    if spec.logical == EVENTS_QUEUE and "Policy" not in attrs:
        differences.append("no policy allowing S3 to send notifications")
        wanted["Policy"] = _events_queue_policy(s, attrs["QueueArn"])
    if differences:
        if check:
            report.drift.extend(f"queue {spec.name}: {d}" for d in differences)
        else:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=wanted)
            report.updated.extend(f"queue {spec.name}: {d}" for d in differences)
    return str(attrs["QueueArn"])


def _attribute_drift(s: Settings, spec: QueueSpec, wanted: dict[str, str],
                     attrs: dict[str, str]) -> list[str]:
    drift: list[str] = []
    for key, value in wanted.items():
        if key == "RedrivePolicy":
            continue
        if attrs.get(key) != value:
            drift.append(f"{key} is {attrs.get(key)!r}, expected {value!r}")
    if spec.logical in STAGE_QUEUES:
        visibility = int(attrs.get("VisibilityTimeout", "0"))
        if not s.heartbeat_enabled and visibility <= s.task_time_limit:
            drift.append(f"VisibilityTimeout {visibility}s is not above TASK_TIME_LIMIT "
                         f"{s.task_time_limit}s and HEARTBEAT=off: a long task would run twice")
        elif s.heartbeat_enabled and visibility < 3 * s.heartbeat_interval:
            drift.append(f"VisibilityTimeout {visibility}s is below three HEARTBEAT_INTERVALs "
                         f"({s.heartbeat_interval}s): a running task's message could be taken")
    if spec.dlq:
        raw = attrs.get("RedrivePolicy")
        if not raw:
            drift.append("no redrive policy: crashed or poison messages would loop forever")
        else:
            policy = json.loads(raw)
            expected = json.loads(wanted["RedrivePolicy"])
            if (policy.get("deadLetterTargetArn") != expected["deadLetterTargetArn"]
                    or int(policy.get("maxReceiveCount", 0)) != s.max_receive_count):
                drift.append(f"redrive policy is {raw}, expected {wanted['RedrivePolicy']}")
    return drift


def _events_queue_policy(s: Settings, queue_arn: str) -> str:
    """Allow S3 to deliver notifications of the allowed buckets to the events queue."""
    return json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "AllowS3Notifications",
            "Effect": "Allow",
            "Principal": {"Service": "s3.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnLike": {"aws:SourceArn": [f"arn:aws:s3:::{b}"
                                                        for b in s.allowed_buckets]}},
        }],
    })


def _existing_buckets(s: Settings) -> set[str]:
    return {b["Name"] for b in aws.s3(s).list_buckets().get("Buckets", [])}


def _ensure_bucket(s: Settings, bucket: str, report: Report, check: bool) -> None:
    if bucket in _existing_buckets(s):
        return
    if check:
        report.drift.append(f"bucket {bucket} is missing")
        return
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if s.region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": s.region}
    aws.s3(s).create_bucket(**kwargs)
    report.created.append(f"bucket {bucket}")


def _ensure_work_lifecycle(s: Settings, report: Report, check: bool) -> None:
    rule = {"ID": "expire-extracted-text", "Status": "Enabled",
            "Filter": {"Prefix": EXTRACTED_PREFIX},
            "Expiration": {"Days": EXTRACTED_EXPIRY_DAYS}}
    try:
        rules = aws.s3(s).get_bucket_lifecycle_configuration(Bucket=s.work_bucket)["Rules"]
    except Exception as exc:
        if error_code(exc) != "NoSuchLifecycleConfiguration":
            raise
        rules = []
    if any(r.get("ID") == rule["ID"] for r in rules):
        return
    if check:
        report.drift.append(f"bucket {s.work_bucket}: no expiry of {EXTRACTED_PREFIX}")
        return
    aws.s3(s).put_bucket_lifecycle_configuration(
        Bucket=s.work_bucket, LifecycleConfiguration={"Rules": [*rules, rule]})
    report.updated.append(f"bucket {s.work_bucket}: expire {EXTRACTED_PREFIX} after "
                          f"{EXTRACTED_EXPIRY_DAYS} days")


def _ensure_notification(s: Settings, queue_arn: str, report: Report, check: bool) -> None:
    client = aws.s3(s)
    if s.upload_bucket not in _existing_buckets(s):
        return
    config = client.get_bucket_notification_configuration(Bucket=s.upload_bucket)
    config.pop("ResponseMetadata", None)
    queues = config.get("QueueConfigurations", [])
    ours = {"Id": NOTIFICATION_ID, "QueueArn": queue_arn, "Events": list(NOTIFICATION_EVENTS)}
    current = next((q for q in queues if q.get("Id") == NOTIFICATION_ID), None)
    others = [q for q in queues if q.get("Id") != NOTIFICATION_ID]
    report.drift.extend(notification_overlaps([ours, *others],
                                              config.get("TopicConfigurations", []),
                                              config.get("LambdaFunctionConfigurations", [])))
    if current is not None and _same_notification(current, ours):
        return
    what = "missing" if current is None else "differs"
    if check:
        report.drift.append(f"bucket {s.upload_bucket}: event notification {what}")
        return
    config["QueueConfigurations"] = [*others, ours]
    client.put_bucket_notification_configuration(Bucket=s.upload_bucket,
                                                 NotificationConfiguration=config)
    report.updated.append(f"bucket {s.upload_bucket}: event notification -> {queue_arn}")


def _same_notification(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return (a.get("QueueArn") == b["QueueArn"]
            and sorted(a.get("Events", [])) == sorted(b["Events"]) and not _filter_rules(a))


def _filter_rules(config: dict[str, Any]) -> dict[str, str]:
    rules = config.get("Filter", {}).get("Key", {}).get("FilterRules", [])
    return {str(r["Name"]).lower(): str(r["Value"]) for r in rules}


def _events_overlap(a: list[str], b: list[str]) -> bool:
    def covers(x: str, y: str) -> bool:
        return x == y or (x.endswith("*") and y.startswith(x[:-1]))

    return any(covers(x, y) or covers(y, x) for x in a for y in b)


def _filters_overlap(a: dict[str, str], b: dict[str, str]) -> bool:
    pa, pb = a.get("prefix", ""), b.get("prefix", "")
    sa, sb = a.get("suffix", ""), b.get("suffix", "")
    return (pa.startswith(pb) or pb.startswith(pa)) and (sa.endswith(sb) or sb.endswith(sa))


def notification_overlaps(*groups: list[dict[str, Any]]) -> list[str]:
    """Pairs of notification configurations that fire for the same object and event.

    Overlapping configurations are how one upload becomes two messages (or two pipelines):
    S3 refuses overlaps only within one destination type, and not across accounts' tooling.
    """
    configs = [c for group in groups for c in group]
    found: list[str] = []
    for i, a in enumerate(configs):
        for b in configs[i + 1:]:
            if _events_overlap(a.get("Events", []), b.get("Events", [])) and _filters_overlap(
                    _filter_rules(a), _filter_rules(b)):
                found.append(f"notification {a.get('Id', '?')!r} overlaps {b.get('Id', '?')!r}: "
                             "the same upload would be delivered twice")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.provision", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on drift")
    args = parser.parse_args(argv)
    report = provision(check=args.check)
    for line in report.lines():
        print(line)
    print("provisioning: ok" if report.ok
          else f"provisioning: {len(report.drift)} drift finding(s)")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
