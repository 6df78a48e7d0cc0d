"""The benchmark's machinery: ElasticMQ starts and speaks SQS; ``bench --quick`` reports.

No timing assertions: the quick run's numbers mean nothing (20 files, a 5 MB "big" PDF, a
loaded machine).  The real numbers come from ``make bench`` on a quiet machine.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack.elasticmq import ElasticMQError, ElasticMQServer, java_executable, maven_executable
from devstack.stack import ROOT
from tests.support import unavailable

pytestmark = pytest.mark.stack

#: every number the report must hold: section -> keys ("" = the section is the number)
REQUIRED = {
    "throughput": ("pipeline_fps", "limit_fps", "baseline_fps"),
    "lag": ("rate_fps", "p50_s", "p95_s", "p99_s"),
    "bridge": ("bridge_eps", "raw_eps"),
    "overhead_cpu_ms_per_file": ("",),
    "memory": ("big_pdf_rss_mb", "many_pages_rss_mb"),
    "recovery_s": ("",),
}
ROWS = ("throughput", "lag", "bridge", "overhead", "memory", "recovery")


def _needs_java_and_maven() -> None:
    try:
        java_executable()
        maven_executable()
    except ElasticMQError as exc:
        unavailable(f"ElasticMQ needs Java and Maven: {exc}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def test_elasticmq_starts_and_honours_a_redrive_policy(tmp_path: Path) -> None:
    import boto3

    _needs_java_and_maven()
    try:
        server = ElasticMQServer.start(home=tmp_path / "elasticmq")
    except ElasticMQError as exc:
        unavailable(f"cannot start ElasticMQ: {exc}")
    with server:
        sqs = boto3.client("sqs", endpoint_url=server.url, region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        # Given a queue whose redrive policy sends a message to its DLQ after one receive
        dlq = sqs.create_queue(QueueName="smoke-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq,
                                           AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        policy = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 1})
        queue = sqs.create_queue(QueueName="smoke", Attributes={
            "VisibilityTimeout": "1", "RedrivePolicy": policy})["QueueUrl"]
        assert json.loads(sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["All"])
                          ["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"] == dlq_arn

        # When a message is received and never deleted
        sqs.send_message(QueueUrl=queue, MessageBody="hello")
        first = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)["Messages"]
        assert [m["Body"] for m in first] == ["hello"]

        # Then after its visibility timeout it is in the DLQ, not back in the queue
        moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=5).get("Messages", [])
        if not moved:  # redrive happens on the next receive of the source queue
            sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2)
            moved = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=5).get("Messages", [])
        assert [m["Body"] for m in moved] == ["hello"]


@pytest.mark.timeout(900)
def test_quick_bench_reports_every_number_and_the_endpoint_of_every_row(tmp_path: Path) -> None:
    _needs_java_and_maven()
    report = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--report", str(report),
         "--run-dir", str(tmp_path / "run")],
        cwd=ROOT, capture_output=True, text=True, timeout=840, check=False)
    assert result.returncode == 0, (result.stdout[-3000:], result.stderr[-3000:])
    data = json.loads(report.read_text())
    for section, keys in REQUIRED.items():
        for key in keys:
            value = data[section] if key == "" else data[section][key]
            assert _is_number(value), (section, key, value)
    assert set(data["endpoints"]) == set(ROWS)
    for row in ("throughput", "lag", "bridge", "overhead"):
        assert "ElasticMQ" in data["endpoints"][row]
    assert {t["row"] for t in data["targets"]} == set(ROWS)
    assert "MISSED" in result.stdout or "met" in result.stdout  # the table was printed
