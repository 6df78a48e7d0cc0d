"""The bridge over the wire (moto server): what gets deleted, enqueued and dead-lettered."""

from __future__ import annotations

import json
import threading

import pytest

from bridge.consumer import Bridge
from pipeline import aws
from pipeline.objects import ObjectRef
from pipeline.settings import Settings
from tests.conftest import EVENTS

pytestmark = pytest.mark.wire


class Recorder:
    """A dispatch that records refs, and fails for keys listed in ``fail``."""

    def __init__(self, settings: Settings, fail: set[str] | None = None) -> None:
        self.settings = settings
        self.fail = fail or set()
        self.refs: list[ObjectRef] = []
        self.in_flight_at_dispatch: list[int] = []

    def __call__(self, obj: ObjectRef) -> None:
        # the message that asked for this chain must still be in SQS while we enqueue
        self.in_flight_at_dispatch.append(depth(self.settings, "events")["in_flight"])
        if obj.key in self.fail:
            raise ConnectionError("broker unreachable")
        self.refs.append(obj)


def depth(settings: Settings, logical: str, dlq: bool = False) -> dict[str, int]:
    name = settings.dlq_name(logical) if dlq else settings.queue_name(logical)
    attrs = aws.sqs(settings).get_queue_attributes(
        QueueUrl=aws.queue_url(name, settings),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return {"visible": int(attrs["ApproximateNumberOfMessages"]),
            "in_flight": int(attrs["ApproximateNumberOfMessagesNotVisible"])}


def send(settings: Settings, body: str) -> None:
    aws.sqs(settings).send_message(
        QueueUrl=aws.queue_url(settings.queue_name("events"), settings), MessageBody=body)


def record(bucket: str, key: str, event: str = "ObjectCreated:Put") -> str:
    return json.dumps({"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventTime": "2026-12-01T00:00:00.000Z",
        "eventName": event, "s3": {"bucket": {"name": bucket},
                                   "object": {"key": key, "size": 3, "eTag": "abc"}}}]})


def drain(bridge: Bridge, rounds: int = 3) -> dict[str, int]:
    total = {"received": 0, "enqueued": 0, "ignored": 0, "dead_lettered": 0, "failed": 0}
    for _ in range(rounds):
        report = bridge.poll_once()
        for k in total:
            total[k] += getattr(report, k)
    return total


def test_real_upload_with_japanese_folder_reaches_dispatch(isolated: Settings) -> None:
    recorder = Recorder(isolated)
    bridge = Bridge(isolated, dispatch=recorder, wait_time_seconds=1)
    aws.s3(isolated).put_object(Bucket=isolated.upload_bucket,
                                Key="議事録 2024/定例 会議+1.txt", Body=b"abc")

    totals = drain(bridge)

    assert [r.key for r in recorder.refs] == ["議事録 2024/定例 会議+1.txt"]
    assert totals["ignored"] == 1  # the s3:TestEvent sent when the notification was set up
    assert all(n >= 1 for n in recorder.in_flight_at_dispatch)  # not deleted before enqueue
    assert depth(isolated, "events") == {"visible": 0, "in_flight": 0}


def test_message_whose_enqueue_fails_is_not_deleted(isolated: Settings) -> None:
    b = isolated.upload_bucket
    recorder = Recorder(isolated, fail={"bad.txt"})
    bridge = Bridge(isolated, dispatch=recorder, wait_time_seconds=1)
    send(isolated, record(b, "good-1.txt"))
    send(isolated, record(b, "bad.txt"))
    send(isolated, record(b, "good-2.txt"))

    report = bridge.poll_once()
    while report.received < 3:  # moto may hand the batch over in parts
        more = bridge.poll_once()
        report.received += more.received
        report.failed += more.failed
        report.enqueued += more.enqueued

    assert sorted(r.key for r in recorder.refs) == ["good-1.txt", "good-2.txt"]
    assert report.failed == 1
    # the failed one stays in SQS (in flight until its visibility timeout), the others are gone
    assert depth(isolated, "events") == {"visible": 0, "in_flight": 1}


def test_malformed_message_goes_to_the_events_dlq_once_and_the_batch_proceeds(
        isolated: Settings) -> None:
    recorder = Recorder(isolated)
    bridge = Bridge(isolated, dispatch=recorder, wait_time_seconds=1)
    send(isolated, "{this is not json")
    send(isolated, record(isolated.upload_bucket, "fine.txt"))

    totals = drain(bridge)

    assert totals["dead_lettered"] == 1
    assert [r.key for r in recorder.refs] == ["fine.txt"]
    assert depth(isolated, "events") == {"visible": 0, "in_flight": 0}
    dlq_url = aws.queue_url(isolated.dlq_name("events"), isolated)
    got = aws.sqs(isolated).receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10,
                                            MessageAttributeNames=["All"], WaitTimeSeconds=1)
    (dead,) = got["Messages"]
    assert dead["Body"] == "{this is not json"
    assert dead["MessageAttributes"]["reason"]["StringValue"] == "malformed-event"
    assert "not JSON" in dead["MessageAttributes"]["error"]["StringValue"]


def test_test_event_and_foreign_bucket_are_consumed_silently(isolated: Settings) -> None:
    recorder = Recorder(isolated)
    bridge = Bridge(isolated, dispatch=recorder, wait_time_seconds=1)
    send(isolated, (EVENTS / "moto-s3-test-event.json").read_text())
    send(isolated, record("someone-elses-bucket", "x.txt"))

    totals = drain(bridge)

    assert recorder.refs == []
    assert totals["ignored"] >= 2 and totals["dead_lettered"] == 0
    assert depth(isolated, "events") == {"visible": 0, "in_flight": 0}
    assert depth(isolated, "events", dlq=True)["visible"] == 0


def test_removal_events_are_dispatched_as_removals(isolated: Settings) -> None:
    recorder = Recorder(isolated)
    bridge = Bridge(isolated, dispatch=recorder, wait_time_seconds=1)
    send(isolated, record(isolated.upload_bucket, "gone.txt", "ObjectRemoved:Delete"))
    drain(bridge, rounds=2)
    (ref,) = recorder.refs
    assert ref.is_removal


def test_stop_ends_the_run_loop_after_the_batch_in_hand(isolated: Settings) -> None:
    bridge = Bridge(isolated, dispatch=Recorder(isolated), wait_time_seconds=1)
    thread = threading.Thread(target=bridge.run)
    thread.start()
    bridge.stop()
    thread.join(10)
    assert not thread.is_alive()
