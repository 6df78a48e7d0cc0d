"""Parse raw event messages into typed, read-only ``ObjectRef`` values.

Accepted shapes (real payloads under tests/events/):
- an S3 event notification (``{"Records": [{"eventSource": "aws:s3", ...}]}``);
- the same wrapped in an SNS notification (``{"Type": "Notification", "Message": "<json>"}``);
- an EventBridge event from S3 (``"source": "aws.s3"``, ``"detail-type": "Object Created"`` or
  ``"Object Deleted"``);
- ``s3:TestEvent``, which S3 sends when a notification is configured: parsed to no records.

Object keys arrive URL-encoded (``+`` for spaces, ``%2F`` ...) and go through ``unquote_plus``.
Optional fields: ``versionId`` (unversioned buckets), ``sequencer`` (absent on local
endpoints), ``size``/``eTag`` (absent on removals).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from pipeline.errors import MalformedEvent
from pipeline.objects import ObjectRef

#: EventBridge detail-types and the S3 notification event family they correspond to
_EVENTBRIDGE_TYPES = {"Object Created": "ObjectCreated", "Object Deleted": "ObjectRemoved"}


@dataclass(frozen=True)
class ParsedMessage:
    records: tuple[ObjectRef, ...]
    #: True for ``s3:TestEvent`` (consumed silently)
    test_event: bool = False


def parse_message(body: str) -> ParsedMessage:
    """Parse one SQS message body.

    Raises:
        MalformedEvent: the body is not JSON or not one of the accepted shapes; the message
            names what is wrong.
    """
    try:
        data = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise MalformedEvent(f"body is not JSON: {exc}") from None
    return _parse(data, depth=0)


def _parse(data: Any, depth: int) -> ParsedMessage:
    if not isinstance(data, dict):
        raise MalformedEvent(f"expected a JSON object, got {type(data).__name__}")
    if data.get("Type") == "Notification" and "Message" in data:
        if depth > 0:
            raise MalformedEvent("SNS notification nested in another notification")
        try:
            inner = json.loads(data["Message"])
        except (TypeError, ValueError):
            raise MalformedEvent("SNS Message is not JSON") from None
        return _parse(inner, depth + 1)
    if data.get("Event") == "s3:TestEvent":
        return ParsedMessage(records=(), test_event=True)
    if "Records" in data:
        records = data["Records"]
        if not isinstance(records, list) or not records:
            raise MalformedEvent("Records must be a non-empty list")
        return ParsedMessage(records=tuple(_s3_record(r, i) for i, r in enumerate(records)))
    if data.get("source") == "aws.s3" and "detail-type" in data:
        return ParsedMessage(records=(_eventbridge(data),))
    raise MalformedEvent("not an S3 notification, SNS-wrapped notification or EventBridge "
                         f"S3 event (keys: {sorted(data)[:10]})")


def _require(mapping: Any, key: str, where: str) -> Any:
    if not isinstance(mapping, dict) or key not in mapping:
        raise MalformedEvent(f"{where}: missing {key!r}")
    return mapping[key]


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedEvent(f"{where}: expected a non-empty string, got {value!r:.80}")
    return value


def _size(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvent(f"{where}: size must be a non-negative integer, got {value!r:.40}")
    return value


def _s3_record(record: Any, index: int) -> ObjectRef:
    where = f"Records[{index}]"
    source = record.get("eventSource") if isinstance(record, dict) else None
    if source != "aws:s3":
        raise MalformedEvent(f"{where}: eventSource is {source!r}, expected 'aws:s3'")
    event_name = _string(_require(record, "eventName", where), f"{where}.eventName")
    s3 = _require(record, "s3", where)
    bucket = _string(_require(_require(s3, "bucket", where), "name", where), f"{where}.bucket")
    obj = _require(s3, "object", where)
    key = unquote_plus(_string(_require(obj, "key", where), f"{where}.object.key"))
    return ObjectRef(
        bucket=bucket, key=key, version_id=obj.get("versionId") or None,
        etag=obj.get("eTag") or None, size=_size(obj.get("size"), f"{where}.object.size"),
        sequencer=obj.get("sequencer") or None, event_time=record.get("eventTime"),
        event_name=event_name,
    )


def _eventbridge(data: dict[str, Any]) -> ObjectRef:
    family = _EVENTBRIDGE_TYPES.get(data["detail-type"])
    if family is None:
        raise MalformedEvent(f"EventBridge detail-type {data['detail-type']!r} is not handled")
    detail = _require(data, "detail", "EventBridge event")
    bucket = _string(_require(_require(detail, "bucket", "detail"), "name", "detail.bucket"),
                     "detail.bucket.name")
    obj = _require(detail, "object", "detail")
    key = unquote_plus(_string(_require(obj, "key", "detail.object"), "detail.object.key"))
    reason = detail.get("reason") or detail.get("deletion-type") or "Unknown"
    return ObjectRef(
        bucket=bucket, key=key, version_id=obj.get("version-id") or None,
        etag=obj.get("etag") or None, size=_size(obj.get("size"), "detail.object.size"),
        sequencer=obj.get("sequencer") or None, event_time=data.get("time"),
        event_name=f"{family}:{reason}",
    )
