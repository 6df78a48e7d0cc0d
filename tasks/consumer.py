"""The worker's consumer: a message that is not a task we may run is dead-lettered, with why.

Selected with ``worker_consumer = "tasks.consumer:Consumer"`` in ``celeryconfig.py``.  Celery's
own consumer logs such messages and acks (deletes) them, or rejects them into endless
redelivery: either way the operator never sees what arrived.  Here each one gets a dead-letter
record in the ``dead-letter`` queue *before* it is acked:

==============================================  ========================  ====================
what arrived                                    Celery calls              record ``reason``
==============================================  ========================  ====================
signed with an unknown key, or a bad signature  ``on_decode_error``       invalid-signature
unsigned JSON while signing is on               ``on_invalid_task``       invalid-signature
a refused content type (pickle, yaml, ...)      ``on_invalid_task``       refused-content-type
a body that cannot be decoded                   ``on_decode_error``       undecodable-message
not a Celery task message at all                ``on_unknown_message``    undecodable-message
a task name no worker registers                 ``on_unknown_task``       unknown-task
a task message with invalid fields (eta ...)    ``on_invalid_task``       invalid-task
==============================================  ========================  ====================

The record holds the raw body (bounded), content type, headers and SQS ids, never the decoded
arguments: nothing from an untrusted message is deserialized.  If the record cannot be written
the message is rejected without requeue, which kombu (5.7) leaves in SQS for a queue with a
redrive policy: it comes back after the visibility timeout and, after ``maxReceiveCount``
receives, SQS moves it to the stage's DLQ.  Nothing is ever lost silently.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable
from typing import Any, cast

from celery import signals
from celery.exceptions import SecurityError
from celery.worker.consumer import Consumer as CeleryConsumer
from kombu.exceptions import ContentDisallowed

from pipeline import deadletter
from pipeline.errors import PermanentError
from pipeline.settings import Settings, get_settings

logger = logging.getLogger(__name__)

#: characters of the raw body kept in a record (the record must fit in one SQS message)
RAW_BODY_CHARS = 16_000
#: characters of the headers' JSON kept in a record
HEADERS_CHARS = 8_000
#: content types a worker would accept if the message were signed
_SIGNABLE = ("application/json",)


# ---- why a message was refused (PermanentError: never retried) ---------------------------


class RefusedMessage(PermanentError):
    """A message on a task queue that no task may run; dead-lettered as it arrived."""

    reason = "refused-message"


class InvalidSignature(RefusedMessage):
    """The message is not signed, or not by a trusted certificate, or its signature is bad."""

    reason = "invalid-signature"


class RefusedContentType(RefusedMessage):
    """The message's content type (pickle, yaml, ...) is not accepted by the workers."""

    reason = "refused-content-type"


class UndecodableMessage(RefusedMessage):
    """The message body cannot be decoded, or is not a Celery task message."""

    reason = "undecodable-message"


class UnknownTask(RefusedMessage):
    """The message names a task no worker registers."""

    reason = "unknown-task"


class InvalidTask(RefusedMessage):
    """The task message has invalid fields (a malformed eta, expires, arguments ...)."""

    reason = "invalid-task"


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps (kombu wraps decoder errors as ``DecodeError(original)``)."""
    seen: list[BaseException] = []
    todo: list[BaseException] = [exc]
    while todo and len(seen) < 10:
        current = todo.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        todo.extend(c for c in (current.__cause__, current.__context__) if c is not None)
    return seen


def classify(exc: BaseException, content_type: str | None, settings: Settings,
             default: type[RefusedMessage]) -> RefusedMessage:
    """The refusal that explains ``exc`` for a message of ``content_type``.

    A bad or missing signature wins over everything; a refused content type is a missing
    signature when signing is on and the message would otherwise be acceptable JSON.
    """
    causes = _causes(exc)
    detail = f"{type(exc).__name__}: {exc}"[:1000]
    if any(isinstance(c, SecurityError) for c in causes):
        return InvalidSignature(f"signature check failed: {detail}")
    if any(isinstance(c, ContentDisallowed) for c in causes):
        if settings.signing_enabled and (content_type or "") in _SIGNABLE:
            return InvalidSignature(f"unsigned {content_type} message while signing is on")
        return RefusedContentType(f"content type {content_type!r} refused: {detail}")
    return default(detail)


def raw_body(body: Any) -> dict[str, Any]:
    """The message body as stored in a record: text if it is UTF-8, else base64; bounded."""
    if isinstance(body, str):
        text, encoding = body, "text"
    elif isinstance(body, bytes | bytearray | memoryview):
        data = bytes(body)
        try:
            text, encoding = data.decode("utf-8"), "text"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(data).decode("ascii"), "base64"
    else:
        text, encoding = json.dumps(body, default=repr, ensure_ascii=False), "json"
    return {"encoding": encoding, "size": len(text), "truncated": len(text) > RAW_BODY_CHARS,
            "data": text[:RAW_BODY_CHARS]}


def message_record(message: Any, refusal: RefusedMessage) -> deadletter.DeadLetterRecord:
    """A dead-letter record for a refused message; arguments are never decoded."""
    headers = message.headers if isinstance(getattr(message, "headers", None), dict) else {}
    info = getattr(message, "delivery_info", None) or {}
    sqs_message = info.get("sqs_message") or {}
    record = deadletter.build_record(
        task=str(headers.get("task") or "(none)"), task_id=_text(headers.get("id")),
        args=[], kwargs={}, exc=refusal,
        attempts=int((sqs_message.get("Attributes") or {}).get("ApproximateReceiveCount", 1)),
        queue=_text(info.get("routing_key")))
    extra = cast(dict[str, Any], record)
    extra["raw"] = {
        "content_type": _text(getattr(message, "content_type", None)),
        "content_encoding": _text(getattr(message, "content_encoding", None)),
        "headers": json.dumps(headers, default=repr, ensure_ascii=False)[:HEADERS_CHARS],
        "body": raw_body(getattr(message, "body", None)),
        "sqs_message_id": _text(sqs_message.get("MessageId")),
    }
    return record


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def dead_letter_message(message: Any, refusal: RefusedMessage,
                        send: Callable[[deadletter.DeadLetterRecord], None] | None = None,
                        ) -> bool:
    """Record ``message`` in the dead-letter queue, then ack it; True if it was recorded.

    If the record cannot be written the message is rejected without requeue and never acked:
    kombu leaves it in SQS (the queue has a redrive policy) for redelivery, then redrive.
    """
    record = message_record(message, refusal)
    context = {"reason": refusal.reason, "task": record["task"], "task_id": record["task_id"],
               "queue": record["queue"], "content_type": _text(message.content_type),
               "dead_letter_id": record["id"]}
    try:
        (send or deadletter.send)(record)
    except Exception as exc:
        logger.error("refused message NOT dead-lettered (record not written); left in SQS for "
                     "redelivery and redrive", extra={**context, "error": repr(exc)})
        message.reject(requeue=False)
        return False
    logger.error("refused message dead-lettered: %s", refusal, extra=context)
    message.ack()
    return True


class Consumer(CeleryConsumer):
    """Celery's worker consumer, with every refused message dead-lettered before its ack."""

    def _refuse(self, message: Any, refusal: RefusedMessage, exc: BaseException | None) -> bool:
        recorded = dead_letter_message(message, refusal)
        signals.task_rejected.send(sender=self, message=message, exc=exc)
        return recorded

    def on_decode_error(self, message: Any, exc: BaseException) -> None:
        refusal = classify(exc, message.content_type, get_settings(), UndecodableMessage)
        self._refuse(message, refusal, exc)

    def on_unknown_message(self, body: Any, message: Any) -> None:
        self._refuse(message, UndecodableMessage("not a Celery task message (no task name)"),
                     None)

    def on_unknown_task(self, body: Any, message: Any, exc: BaseException) -> None:
        headers = message.headers if isinstance(message.headers, dict) else {}
        name = headers.get("task")
        refusal = UnknownTask(f"no task named {name!r} is registered")
        if self._refuse(message, refusal, exc):
            signals.task_unknown.send(sender=self, message=message, exc=exc, name=name,
                                      id=headers.get("id"))

    def on_invalid_task(self, body: Any, message: Any, exc: BaseException) -> None:
        refusal = classify(exc, message.content_type, get_settings(), InvalidTask)
        self._refuse(message, refusal, exc)


__all__ = ["Consumer", "classify", "dead_letter_message"]
