"""Parsing real event payloads (tests/events/) into ObjectRefs, and refusing malformed ones."""

from __future__ import annotations

import json

import pytest

from bridge.events import parse_message
from pipeline.errors import MalformedEvent
from pipeline.objects import ObjectRef
from tests.conftest import EVENTS


def load(name: str) -> str:
    return (EVENTS / name).read_text()


def test_moto_put_with_japanese_folder_and_spaces_is_unquoted() -> None:
    parsed = parse_message(load("moto-s3-put-japanese-key.json"))
    (ref,) = parsed.records
    # quote_plus encoding: "+" is a space, "%2B" a literal plus, "%2F" a slash
    assert ref.key == "報告書 2024/会議 メモ+v2.txt"
    assert ref.folder == "報告書 2024/"
    assert ref.name == "会議 メモ+v2.txt"
    assert ref.bucket == "filesearch-uploads"
    assert ref.event_name == "ObjectCreated:Put"
    assert ref.sequencer is None and ref.version_id is None  # the local endpoint omits them
    assert ref.order.startswith("t2026-")  # falls back to the event time


def test_moto_delete_is_a_removal() -> None:
    (ref,) = parse_message(load("moto-s3-delete.json")).records
    assert ref.is_removal
    assert ref.key == "報告書 2024/会議 メモ+v2.txt"


def test_test_event_has_no_records() -> None:
    parsed = parse_message(load("moto-s3-test-event.json"))
    assert parsed.test_event and parsed.records == ()


def test_aws_versioned_put_keeps_version_and_sequencer() -> None:
    (ref,) = parse_message(load("aws-s3-put-versioned.json")).records
    assert ref.key == "契約書/2026 年度/見積書 No.5.pdf"
    assert ref.version_id == "096fKKXTRTtl3on89fVO.nfljtsv6qko"
    assert ref.sequencer == "0055AED6DCD90281E5"
    assert ref.size == 1024 and ref.etag == "d41d8cd98f00b204e9800998ecf8427e"
    assert not ref.is_removal


def test_sns_wrapped_equals_unwrapped() -> None:
    wrapped = parse_message(load("aws-sns-wrapped-put.json"))
    plain = parse_message(load("aws-s3-put-versioned.json"))
    assert wrapped == plain


def test_eventbridge_created_and_deleted() -> None:
    (created,) = parse_message(load("aws-eventbridge-object-created.json")).records
    (deleted,) = parse_message(load("aws-eventbridge-object-deleted.json")).records
    assert created.key == deleted.key == "reports/Q3 summary.xlsx"
    assert created.event_name == "ObjectCreated:PutObject" and not created.is_removal
    assert deleted.is_removal
    assert deleted.order > created.order  # sequencer order


def test_sequencer_orders_numerically_after_padding() -> None:
    short = ObjectRef("b", "k", sequencer="FF")
    long = ObjectRef("b", "k", sequencer="0100")
    assert long.order > short.order  # 0x100 > 0xFF although "0100" < "FF" as strings


def test_delete_marker_sorts_after_the_put_it_hides() -> None:
    (put,) = parse_message(load("aws-s3-put-versioned.json")).records
    (marker,) = parse_message(load("aws-s3-delete-marker.json")).records
    assert marker.is_removal and marker.order > put.order


@pytest.mark.parametrize("body, fragment", [
    ("not json", "not JSON"),
    ("[1, 2]", "JSON object"),
    ("{}", "not an S3 notification"),
    ('{"Records": []}', "non-empty list"),
    ('{"Records": [{"eventSource": "aws:sqs"}]}', "eventSource"),
    ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {}}]}',
     "missing 'bucket'"),
    ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", '
     '"s3": {"bucket": {"name": "b"}, "object": {"key": ""}}}]}', "non-empty string"),
    ('{"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", '
     '"s3": {"bucket": {"name": "b"}, "object": {"key": "k", "size": -1}}}]}', "size"),
    ('{"Type": "Notification", "Message": "{oops"}', "SNS Message is not JSON"),
    (json.dumps({"Type": "Notification", "Message": json.dumps(
        {"Type": "Notification", "Message": "{}"})}), "nested"),
    ('{"source": "aws.s3", "detail-type": "Object Restore Completed", "detail": {}}',
     "not handled"),
])
def test_malformed_bodies_name_what_is_wrong(body: str, fragment: str) -> None:
    with pytest.raises(MalformedEvent) as info:
        parse_message(body)
    assert fragment in str(info.value)
    assert info.value.reason == "malformed-event"
