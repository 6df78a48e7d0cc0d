"""Provisioning over the wire: idempotent creation, and drift reported against an account."""

from __future__ import annotations

import json

from pipeline import aws
from pipeline.provision import NOTIFICATION_ID, notification_overlaps, provision, queue_specs
from pipeline.settings import Settings


def test_provision_creates_everything_once(isolated: Settings) -> None:
    # Given a freshly provisioned deployment (the fixture ran provision once)
    sqs = aws.sqs(isolated)
    for spec in queue_specs(isolated):
        url = aws.queue_url(spec.name, isolated)
        attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if spec.dlq:
            policy = json.loads(attrs["RedrivePolicy"])
            assert policy["maxReceiveCount"] == isolated.max_receive_count
            assert policy["deadLetterTargetArn"].endswith(":" + spec.dlq)
    config = aws.s3(isolated).get_bucket_notification_configuration(
        Bucket=isolated.upload_bucket)
    (ours,) = config["QueueConfigurations"]
    assert ours["Id"] == NOTIFICATION_ID
    assert ours["QueueArn"].endswith(isolated.queue_name("events"))
    # When it runs again, Then nothing changes and the check finds no drift
    again = provision(isolated)
    assert again.created == [] and again.updated == [] and again.ok
    assert provision(isolated, check=True).ok


def test_check_reports_short_visibility_and_missing_redrive(isolated: Settings) -> None:
    sqs = aws.sqs(isolated)
    fetch_url = aws.queue_url(isolated.queue_name("fetch"), isolated)
    sqs.set_queue_attributes(QueueUrl=fetch_url, Attributes={"VisibilityTimeout": "20"})
    index_url = aws.queue_url(isolated.queue_name("index"), isolated)
    sqs.set_queue_attributes(QueueUrl=index_url, Attributes={"RedrivePolicy": ""})

    report = provision(isolated, check=True)

    drift = "\n".join(report.drift)
    assert "fetch: VisibilityTimeout 20s is below three HEARTBEAT_INTERVALs" in drift
    assert "fetch: VisibilityTimeout is '20', expected '30'" in drift
    assert "index: no redrive policy" in drift
    # a normal run repairs both
    fixed = provision(isolated)
    assert any("fetch" in line for line in fixed.updated)
    assert provision(isolated, check=True).ok


def test_overlapping_notification_is_reported_not_removed(isolated: Settings) -> None:
    s3 = aws.s3(isolated)
    config = s3.get_bucket_notification_configuration(Bucket=isolated.upload_bucket)
    config.pop("ResponseMetadata", None)
    other_arn = aws.sqs(isolated).get_queue_attributes(
        QueueUrl=aws.queue_url(isolated.dlq_name("fetch"), isolated),
        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    config["QueueConfigurations"].append({
        "Id": "legacy-worker", "QueueArn": other_arn, "Events": ["s3:ObjectCreated:Put"],
        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "invoices/"}]}}})
    s3.put_bucket_notification_configuration(Bucket=isolated.upload_bucket,
                                             NotificationConfiguration=config)

    report = provision(isolated)

    assert any("'filesearch-events' overlaps 'legacy-worker'" in d for d in report.drift)
    ids = {q["Id"] for q in s3.get_bucket_notification_configuration(
        Bucket=isolated.upload_bucket)["QueueConfigurations"]}
    assert ids == {NOTIFICATION_ID, "legacy-worker"}  # someone else's config is left alone


def test_overlap_rules() -> None:
    def cfg(name: str, events: list[str], prefix: str = "", suffix: str = "") -> dict[str, object]:
        rules = [{"Name": "prefix", "Value": prefix}, {"Name": "suffix", "Value": suffix}]
        return {"Id": name, "Events": events, "Filter": {"Key": {"FilterRules": rules}}}

    assert notification_overlaps([cfg("a", ["s3:ObjectCreated:*"]),
                                  cfg("b", ["s3:ObjectCreated:Put"], "x/")])
    assert not notification_overlaps([cfg("a", ["s3:ObjectCreated:*"], "x/"),
                                      cfg("b", ["s3:ObjectCreated:*"], "y/")])
    assert not notification_overlaps([cfg("a", ["s3:ObjectCreated:*"]),
                                      cfg("b", ["s3:ObjectRemoved:*"])])
    assert not notification_overlaps([cfg("a", ["s3:ObjectCreated:*"], suffix=".pdf"),
                                      cfg("b", ["s3:ObjectCreated:*"], suffix=".jpg")])
