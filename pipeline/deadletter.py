"""Dead-letter records: what failed, why, and everything needed to run it again.

A record is a JSON message in the ``dead-letter`` queue, written *before* the failed task's
message is acked.  Nothing consumes that queue automatically: operators list, show, re-queue
and purge records with ``python -m pipeline.dlq`` (see docs/runbook.md).
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import traceback
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypedDict

from pipeline import aws
from pipeline.errors import reason_of
from pipeline.settings import DEAD_LETTER_QUEUE, Settings, get_settings

#: characters of traceback kept in a record (SQS messages are small)
TRACEBACK_CHARS = 8_000
#: characters of each argument's JSON kept in a record
ARGUMENT_CHARS = 32_000


class DeadLetterRecord(TypedDict, total=False):
    id: str
    task: str
    task_id: str | None
    args: list[Any]
    kwargs: dict[str, Any]
    #: bucket/key/version_id/etag of the object concerned, when the arguments name one
    object: dict[str, Any]
    error_class: str
    reason: str
    message: str
    traceback: str
    attempts: int
    first_failure_at: str
    last_failure_at: str
    worker: str
    queue: str | None
    #: remaining chain (Celery signature dicts) after the failed stage
    chain: list[Any] | None


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def find_object(value: Any) -> dict[str, Any]:
    """The first ``{"bucket", "key", ...}`` reference inside task arguments, or ``{}``."""
    if isinstance(value, dict):
        if isinstance(value.get("bucket"), str) and isinstance(value.get("key"), str):
            return {k: value.get(k) for k in ("bucket", "key", "version_id", "etag")}
        for item in value.values():
            found = find_object(item)
            if found:
                return found
    elif isinstance(value, list | tuple):
        for item in value:
            found = find_object(item)
            if found:
                return found
    return {}


def _bounded(value: Any) -> Any:
    text = json.dumps(value, default=repr, ensure_ascii=False)
    if len(text) <= ARGUMENT_CHARS:
        return json.loads(text)
    return {"truncated": True, "json": text[:ARGUMENT_CHARS]}


def build_record(*, task: str, task_id: str | None, args: list[Any], kwargs: dict[str, Any],
                 exc: BaseException, attempts: int, first_failure_at: str | None = None,
                 worker: str | None = None, queue: str | None = None,
                 chain: list[Any] | None = None) -> DeadLetterRecord:
    now = utcnow()
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return DeadLetterRecord(
        id=str(uuid.uuid4()), task=task, task_id=task_id,
        args=[_bounded(a) for a in args], kwargs={k: _bounded(v) for k, v in kwargs.items()},
        object=find_object([args, kwargs]), error_class=type(exc).__name__,
        reason=reason_of(exc), message=str(exc)[:2000], traceback=tb[-TRACEBACK_CHARS:],
        attempts=attempts, first_failure_at=first_failure_at or now, last_failure_at=now,
        worker=worker or socket.gethostname(), queue=queue,
        chain=_bounded(chain) if chain else None,
    )


def send(record: DeadLetterRecord, settings: Settings | None = None) -> None:
    """Write ``record`` to the dead-letter queue; raises if SQS did not take it."""
    s = settings or get_settings()
    aws.sqs(s).send_message(
        QueueUrl=aws.queue_url(s.queue_name(DEAD_LETTER_QUEUE), s),
        MessageBody=json.dumps(record, ensure_ascii=False, default=repr),
        MessageAttributes={
            "reason": {"DataType": "String", "StringValue": record["reason"]},
            "error_class": {"DataType": "String", "StringValue": record["error_class"]},
        },
    )


@dataclass(frozen=True)
class Leased:
    """A message received from a queue, invisible to others until released or deleted."""

    queue_url: str
    receipt_handle: str
    message_id: str
    body: str
    attributes: dict[str, Any]
    message_attributes: dict[str, Any]

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def lease_all(queue_url: str, lease_seconds: int = 30, limit: int = 10_000,
              settings: Settings | None = None) -> Iterator[Leased]:
    """Receive every message of a queue, each hidden for ``lease_seconds``.

    The caller deletes or releases what it received.  Stops at the first empty receive.
    """
    client = aws.sqs(settings or get_settings())
    seen = 0
    while seen < limit:
        resp = client.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                      VisibilityTimeout=lease_seconds, WaitTimeSeconds=0,
                                      AttributeNames=["All"], MessageAttributeNames=["All"])
        messages = resp.get("Messages", [])
        if not messages:
            return
        for m in messages:
            seen += 1
            yield Leased(queue_url, m["ReceiptHandle"], m["MessageId"], m["Body"],
                         m.get("Attributes", {}), m.get("MessageAttributes", {}))


def release(messages: list[Leased], settings: Settings | None = None) -> None:
    """Make leased messages visible again at once."""
    client = aws.sqs(settings or get_settings())
    for i in range(0, len(messages), 10):
        batch = messages[i:i + 10]
        client.change_message_visibility_batch(
            QueueUrl=batch[0].queue_url,
            Entries=[{"Id": str(n), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                     for n, m in enumerate(batch)])


def read_records(settings: Settings | None = None) -> list[DeadLetterRecord]:
    """Every dead-letter record currently in the queue (leased briefly, then released)."""
    s = settings or get_settings()
    leased = list(lease_all(aws.queue_url(s.queue_name(DEAD_LETTER_QUEUE), s), 30, settings=s))
    try:
        return [r for r in (m.json() for m in leased) if isinstance(r, dict)]  # type: ignore[misc]
    finally:
        if leased:
            release(leased, s)
