"""The bridge: a long-running consumer of the S3 events queue that starts one chain per object.

For each batch of up to 10 messages, each message is handled on its own:

- parsed records of allowed buckets -> one chain each (``tasks.chains.chain_for``); the
  message is deleted only once *every* chain it asked for was enqueued;
- ``s3:TestEvent`` and records of other buckets -> deleted, logged, nothing enqueued;
- unparseable -> copied once to the events DLQ with the reason attached, then deleted;
- an enqueue that fails -> the message is left alone: SQS shows it again after the queue's
  visibility timeout, and its redrive policy moves it to the events DLQ after
  ``maxReceiveCount`` tries.  It never blocks the rest of the batch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bridge.events import parse_message
from pipeline import aws, metrics
from pipeline.errors import MalformedEvent
from pipeline.objects import ObjectRef
from pipeline.settings import EVENTS_QUEUE, Settings, get_settings

logger = logging.getLogger(__name__)

#: messages per receive (the SQS maximum)
BATCH_SIZE = 10

Dispatch = Callable[[ObjectRef], None]


def dispatch_chain(obj: ObjectRef) -> None:
    """Enqueue the chain for ``obj`` on the broker (raises if it could not be sent)."""
    from tasks.chains import chain_for

    chain_for(obj).apply_async(retry=True)


@dataclass
class BatchReport:
    received: int = 0
    enqueued: int = 0
    ignored: int = 0
    dead_lettered: int = 0
    failed: int = 0
    deleted: list[str] = field(default_factory=list)


class Bridge:
    def __init__(self, settings: Settings | None = None, dispatch: Dispatch = dispatch_chain,
                 wait_time_seconds: int | None = None) -> None:
        self.settings = settings or get_settings()
        self.dispatch = dispatch
        self.wait = (self.settings.bridge_wait_time_seconds if wait_time_seconds is None
                     else wait_time_seconds)
        self.sqs = aws.sqs(self.settings)
        self.queue_url = aws.queue_url(self.settings.queue_name(EVENTS_QUEUE), self.settings)
        self.dlq_url = aws.queue_url(self.settings.dlq_name(EVENTS_QUEUE), self.settings)
        self.stopping = threading.Event()

    def run(self) -> None:
        """Poll until ``stop()``; the batch in hand is finished first."""
        logger.info("bridge started", extra={"queue": self.queue_url})
        while not self.stopping.is_set():
            try:
                self.poll_once()
            except Exception:  # keep serving: the messages are still in SQS
                logger.exception("bridge poll failed; retrying in 1 s")
                self.stopping.wait(1.0)
        logger.info("bridge stopped")

    def stop(self) -> None:
        self.stopping.set()

    def poll_once(self) -> BatchReport:
        resp = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=self.wait, AttributeNames=["ApproximateReceiveCount"])
        report = BatchReport()
        done: list[dict[str, Any]] = []
        for message in resp.get("Messages", []):
            report.received += 1
            if self.handle(message, report):
                done.append(message)
        self._delete(done, report)
        return report

    def handle(self, message: dict[str, Any], report: BatchReport) -> bool:
        """Handle one message; True if it may be deleted."""
        ctx = {"message_id": message.get("MessageId")}
        try:
            parsed = parse_message(message.get("Body", ""))
        except MalformedEvent as exc:
            return self._dead_letter(message, exc, report)
        if parsed.test_event:
            logger.info("s3:TestEvent consumed", extra=ctx)
            report.ignored += 1
            return True
        for obj in parsed.records:
            if obj.bucket not in self.settings.allowed_buckets:
                logger.warning("event for a bucket outside ALLOWED_BUCKETS ignored",
                               extra={**ctx, **obj.log_context()})
                report.ignored += 1
                continue
            try:
                self.dispatch(obj)
            except Exception as exc:
                logger.error("could not enqueue chain; message left for redelivery",
                             extra={**ctx, **obj.log_context(), "error": repr(exc)})
                report.failed += 1
                return False
            logger.info("chain enqueued", extra={**ctx, **obj.log_context(),
                                                 "event": obj.event_name})
            report.enqueued += 1
        return True

    def _dead_letter(self, message: dict[str, Any], exc: MalformedEvent,
                     report: BatchReport) -> bool:
        try:
            self.sqs.send_message(
                QueueUrl=self.dlq_url, MessageBody=message.get("Body", "") or "(empty body)",
                MessageAttributes={
                    "reason": {"DataType": "String", "StringValue": exc.reason},
                    "error": {"DataType": "String", "StringValue": str(exc)[:1000]},
                    "source_message_id": {"DataType": "String",
                                          "StringValue": str(message.get("MessageId"))},
                })
        except Exception as send_error:
            logger.error("could not dead-letter malformed event; left for redrive",
                         extra={"message_id": message.get("MessageId"),
                                "error": repr(send_error)})
            report.failed += 1
            return False
        logger.error("malformed event dead-lettered: %s", exc,
                     extra={"message_id": message.get("MessageId"), "reason": exc.reason})
        report.dead_lettered += 1
        return True

    def _delete(self, messages: list[dict[str, Any]], report: BatchReport) -> None:
        if not messages:
            return
        queue = self.settings.queue_name(EVENTS_QUEUE)
        try:
            resp = self.sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                         for i, m in enumerate(messages)])
        except Exception as exc:
            for _ in messages:
                metrics.record_delete(queue, False, type(exc).__name__, source="bridge")
            raise
        for ok in resp.get("Successful", []):
            report.deleted.append(messages[int(ok["Id"])]["MessageId"])
            metrics.record_delete(queue, True, source="bridge")
        for failed in resp.get("Failed", []):
            metrics.record_delete(queue, False, failed.get("Code", ""), source="bridge")
            # the chain is enqueued; a redelivery re-enqueues it and the index write is
            # idempotent, so this costs work, not correctness
            logger.error("delete failed: %s", failed.get("Message"),
                         extra={"message_id": messages[int(failed["Id"])]["MessageId"],
                                "code": failed.get("Code")})
