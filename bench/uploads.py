"""Uploads and their S3 events.

S3 stays on moto while SQS runs on ElasticMQ, so moto's own notifications cannot reach the
events queue: after each ``PutObject`` the benchmark sends the event S3 would have sent (same
shape as an AWS ``ObjectCreated:Put`` record, with a ``sequencer``) to the events queue itself.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

from pipeline import aws
from pipeline.settings import EVENTS_QUEUE, get_settings

#: parallel uploads when pre-loading objects
UPLOAD_THREADS = 8


def _sequencer() -> str:
    return f"{time.time_ns():X}"


def event_body(bucket: str, key: str, size: int, etag: str | None) -> str:
    """The JSON of an S3 ``ObjectCreated:Put`` notification for one object."""
    now = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    record: dict[str, Any] = {
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": get_settings().region,
        "eventTime": now, "eventName": "ObjectCreated:Put",
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "filesearch-events",
               "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
               "object": {"key": quote_plus(key), "size": size, "eTag": etag or "",
                          "sequencer": _sequencer()}},
    }
    return json.dumps({"Records": [record]})


def events_queue_url() -> str:
    s = get_settings()
    return aws.queue_url(s.queue_name(EVENTS_QUEUE), s)


def put_objects(files: Iterable[tuple[Path, str]]) -> dict[str, tuple[int, str | None]]:
    """Upload files (no events); returns key -> (size, etag)."""
    s3, bucket = aws.s3(), get_settings().upload_bucket

    def put(item: tuple[Path, str]) -> tuple[str, tuple[int, str | None]]:
        data = item[0].read_bytes()
        resp = s3.put_object(Bucket=bucket, Key=item[1], Body=data)
        return item[1], (len(data), str(resp.get("ETag", "")).strip('"') or None)

    with ThreadPoolExecutor(UPLOAD_THREADS) as pool:
        return dict(pool.map(put, list(files)))


def send_events(objects: dict[str, tuple[int, str | None]]) -> float:
    """Send one event per object to the events queue in batches of 10; returns the start time."""
    sqs, url, bucket = aws.sqs(), events_queue_url(), get_settings().upload_bucket
    started = time.time()
    items = list(objects.items())
    for i in range(0, len(items), 10):
        sqs.send_message_batch(QueueUrl=url, Entries=[
            {"Id": str(j), "MessageBody": event_body(bucket, key, size, etag)}
            for j, (key, (size, etag)) in enumerate(items[i:i + 10])])
    return started


def upload_and_notify(path: Path, key: str) -> float:
    """Upload one file (multipart for big ones) and send its event; returns the upload start."""
    s3, sqs, bucket = aws.s3(), aws.sqs(), get_settings().upload_bucket
    started = time.time()
    s3.upload_file(str(path), bucket, key)
    head = s3.head_object(Bucket=bucket, Key=key)
    sqs.send_message(QueueUrl=events_queue_url(), MessageBody=event_body(
        bucket, key, int(head["ContentLength"]), str(head.get("ETag", "")).strip('"')))
    return started


def queue_depth(logical: str) -> int:
    """Visible + in flight + delayed messages of one of this deployment's queues."""
    s = get_settings()
    attrs = aws.sqs().get_queue_attributes(
        QueueUrl=aws.queue_url(s.queue_name(logical), s), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return sum(int(v) for v in attrs.values())
