"""Refused messages are dead-lettered with their reason before they are acked; none ever runs.

Unit tests of ``tasks.consumer`` (which refusal explains which error; record first, ack
second; a record that cannot be written leaves the message in SQS), of the bucket allow-list
inside the workers and of object keys never becoming local paths; then, over the wire, a
stack whose worker receives what an attacker or a buggy producer would put on a stage queue:
a pickle payload that would run code when unpickled, an unknown task name, a non-Celery body,
and a well-formed chain for a bucket outside ALLOWED_BUCKETS.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from celery.exceptions import InvalidTaskError, SecurityError
from kombu import Connection, Producer
from kombu.exceptions import ContentDisallowed, DecodeError

from devstack.stack import Stack
from pipeline import deadletter
from pipeline.errors import BucketNotAllowed
from pipeline.objects import ObjectRef
from pipeline.settings import Settings
from tasks.consumer import (
    RAW_BODY_CHARS,
    InvalidSignature,
    InvalidTask,
    RefusedContentType,
    UndecodableMessage,
    classify,
    dead_letter_message,
    raw_body,
)
from tests.test_dlq import tasks_app_loadable  # noqa: F401  (fixture)
from tests.test_pipeline_e2e import Running
from tests.test_reliability import events_for, log_lines, start

SIGNING_ON = Settings(signing_key_file="k.pem", signing_cert_file="c.pem",
                      signing_cert_store="store/")
SIGNING_OFF = Settings()


# ---- which refusal explains which error -----------------------------------------------------


def wrapped(exc: Exception) -> DecodeError:
    """What kombu raises: the decoder's error wrapped in a DecodeError (raised inside except)."""
    try:
        raise exc
    except Exception as inner:
        try:
            raise DecodeError(inner) from None
        except DecodeError as outer:
            return outer


@pytest.mark.parametrize(("exc", "content_type", "settings", "reason"), [
    (wrapped(SecurityError("Bad signature")), "application/data", SIGNING_ON,
     "invalid-signature"),
    (wrapped(SecurityError("Unknown certificate")), "application/data", SIGNING_ON,
     "invalid-signature"),
    (ContentDisallowed("Refusing untrusted content of type pickle"),
     "application/x-python-serialize", SIGNING_ON, "refused-content-type"),
    (ContentDisallowed("Refusing untrusted content of type pickle"),
     "application/x-python-serialize", SIGNING_OFF, "refused-content-type"),
    (ContentDisallowed("untrusted json"), "application/json", SIGNING_ON, "invalid-signature"),
    (ContentDisallowed("untrusted yaml"), "application/x-yaml", SIGNING_OFF,
     "refused-content-type"),
    (wrapped(ValueError("Expecting value")), "application/json", SIGNING_OFF,
     "undecodable-message"),
])
def test_classify_names_the_reason(exc: Exception, content_type: str, settings: Settings,
                                   reason: str) -> None:
    assert classify(exc, content_type, settings, UndecodableMessage).reason == reason


def test_classify_falls_back_to_the_handlers_default() -> None:
    refusal = classify(InvalidTaskError("bad eta"), "application/json", SIGNING_OFF, InvalidTask)
    assert refusal.reason == "invalid-task" and "bad eta" in str(refusal)


def test_raw_body_is_kept_as_text_or_base64_and_bounded() -> None:
    assert raw_body(b'{"a": 1}') == {"encoding": "text", "size": 8, "truncated": False,
                                     "data": '{"a": 1}'}
    binary = raw_body(pickle.dumps(object))
    assert binary["encoding"] == "base64"
    big = raw_body("x" * (RAW_BODY_CHARS + 10))
    assert big["truncated"] and len(big["data"]) == RAW_BODY_CHARS


# ---- record first, then ack; no record, no ack -----------------------------------------------


class FakeMessage:
    def __init__(self, calls: list[str], body: bytes = b"\x80\x04junk") -> None:
        self.calls = calls
        self.body = body
        self.content_type = "application/x-python-serialize"
        self.content_encoding = "binary"
        self.headers = {"task": "tasks.fetch", "id": "t-1"}
        self.delivery_info = {"routing_key": "fetch", "sqs_message": {
            "MessageId": "m-1", "Attributes": {"ApproximateReceiveCount": "2"}}}

    def ack(self) -> None:
        self.calls.append("ack")

    def reject(self, requeue: bool = False) -> None:
        self.calls.append(f"reject(requeue={requeue})")


def test_the_record_is_written_before_the_message_is_acked() -> None:
    calls: list[str] = []
    records: list[deadletter.DeadLetterRecord] = []

    def send(record: deadletter.DeadLetterRecord) -> None:
        calls.append("send")
        records.append(record)

    assert dead_letter_message(FakeMessage(calls), RefusedContentType("pickle"), send)

    assert calls == ["send", "ack"]
    (record,) = records
    assert record["reason"] == "refused-content-type" and record["task"] == "tasks.fetch"
    assert record["task_id"] == "t-1" and record["queue"] == "fetch" and record["attempts"] == 2
    assert record["args"] == [] and record["kwargs"] == {}  # nothing untrusted was decoded
    raw = record["raw"]  # type: ignore[typeddict-item]
    assert raw["content_type"] == "application/x-python-serialize"
    assert raw["body"]["encoding"] == "base64" and raw["sqs_message_id"] == "m-1"
    json.dumps(record)  # fits the dead-letter queue as JSON


def test_a_record_that_cannot_be_written_leaves_the_message_in_sqs() -> None:
    calls: list[str] = []

    def send(record: deadletter.DeadLetterRecord) -> None:
        calls.append("send")
        raise ConnectionError("SQS is down")

    assert not dead_letter_message(FakeMessage(calls), InvalidSignature("bad"), send)

    # rejected without requeue: kombu leaves it in a queue with a redrive policy; never acked
    assert calls == ["send", "reject(requeue=False)"]


# ---- the bucket allow-list inside the workers; keys never become paths ----------------------


@pytest.mark.usefixtures("tasks_app_loadable")
def test_fetch_refuses_a_disallowed_bucket_before_reading_anything(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeline import storage
    from tasks.fetch import fetch

    def never(*_: Any, **__: Any) -> Any:
        raise AssertionError("the object was read")

    for name in ("head", "read_head", "downloaded"):
        monkeypatch.setattr(storage, name, never)
    ref = ObjectRef(bucket="someone-elses-bucket", key="payroll.xlsx",
                    event_name="ObjectCreated:Put")

    with pytest.raises(BucketNotAllowed):
        fetch.run(ref.to_dict())


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def iter_chunks(self, size: int) -> Iterator[bytes]:
        yield self.data


class _FakeS3:
    def get_object(self, **_: Any) -> dict[str, Any]:
        return {"Body": _Body(b"content")}


@pytest.mark.parametrize("key", ["../../../etc/passwd", "/etc/cron.d/evil",
                                 "a/../../b\\..\\c.pdf", "~root/.ssh/authorized_keys",
                                 "con:aux\x00.txt"])
def test_object_keys_are_never_used_as_local_paths(monkeypatch: pytest.MonkeyPatch,
                                                   key: str) -> None:
    from pipeline import aws, storage

    monkeypatch.setattr(aws, "s3", lambda settings=None: _FakeS3())
    ref = ObjectRef(bucket="filesearch-uploads", key=key, event_name="ObjectCreated:Put")

    with storage.downloaded(ref, max_bytes=1024) as path:
        # Then the file is a private, randomly named temporary file, whatever the key says
        assert path.parent == Path(tempfile.gettempdir())
        assert path.name.startswith("filesearch-") and path.suffix == ".bin"
        for part in ("passwd", "evil", "..", "ssh", "aux"):
            assert part not in path.name
        assert oct(path.stat().st_mode & 0o777) == oct(0o600)
        assert path.read_bytes() == b"content"
    assert not path.exists()


# ---- over the wire --------------------------------------------------------------------------


def task_message(task: str, args: list[Any], chain: list[dict[str, Any]] | None = None) -> \
        tuple[dict[str, Any], tuple[Any, ...]]:
    """Protocol-2 headers and body of a task message, as any Celery client would build them."""
    forger = Celery("forger", set_as_current=False)
    msg = forger.amqp.as_task_v2(str(uuid.uuid4()), task, args=args, chain=chain)
    return dict(msg.headers), tuple(msg.body)


def publish(stack: Stack, queue: str, body: bytes | str, content_type: str,
            content_encoding: str, headers: dict[str, Any],
            monkeypatch: pytest.MonkeyPatch) -> None:
    """Put a message on a stage queue the way kombu would, bypassing the app's serializer."""
    for key, value in stack.env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    running = Running(stack)
    url = running.queue_url(f"filesearch-{queue}")
    options = {"region": stack.env["AWS_REGION"], "predefined_queues": {queue: {"url": url}}}
    with Connection("sqs://", transport_options=options) as conn:
        Producer(conn.channel()).publish(body, exchange="", routing_key=queue,
                                         content_type=content_type,
                                         content_encoding=content_encoding, headers=headers,
                                         retry=True)


def queue_is_empty(running: Running, name: str) -> bool:
    attrs = running.sqs.get_queue_attributes(QueueUrl=running.queue_url(name), AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return attrs == {"ApproximateNumberOfMessages": "0",
                     "ApproximateNumberOfMessagesNotVisible": "0"}


def record_for(running: Running, task_id: str) -> dict[str, Any]:
    found: dict[str, Any] = running.wait_for(lambda: next(
        (r for r in running.dead_letters() if r.get("task_id") == task_id), None), timeout=60)
    return found


class _MakesDirectory:
    """A pickle payload that creates a directory when unpickled: proof of execution."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.path,))


@pytest.fixture(scope="module")
def plain_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Bridge + one worker of every stage queue, signing off (JSON only)."""
    stack = start(tmp_path_factory.mktemp("consumer"), {})
    try:
        yield stack
    finally:
        stack.stop()


def refuses_pickle(stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                   expected_reason: str = "refused-content-type") -> dict[str, Any]:
    """Shared by the signing tests: a pickle task message is dead-lettered and never run."""
    running = Running(stack)
    marker = tmp_path / "pickle-was-executed"
    headers, _ = task_message("tasks.fetch", [])
    body = pickle.dumps(((_MakesDirectory(str(marker)),), {}, {"callbacks": None,
                                                               "errbacks": None,
                                                               "chain": None, "chord": None}))

    publish(stack, "fetch", body, "application/x-python-serialize", "binary", headers,
            monkeypatch)

    record = record_for(running, headers["id"])
    assert record["reason"] == expected_reason
    assert record["error_class"] == "RefusedContentType"
    assert record["raw"]["content_type"] == "application/x-python-serialize"
    assert record["raw"]["body"]["encoding"] == "base64"
    assert not marker.exists(), "the pickle payload was unpickled"
    running.wait_for(lambda: queue_is_empty(running, "filesearch-fetch"), timeout=30)
    return record


@pytest.mark.stack
def test_pickle_task_message_is_refused_never_executed_and_dead_lettered(
        plain_stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record = refuses_pickle(plain_stack, tmp_path, monkeypatch)
    assert record["task"] == "tasks.fetch" and record["queue"] == "fetch"
    time.sleep(2)
    assert [e for e in log_lines(plain_stack, "worker")
            if "refused message dead-lettered" in e.get("msg", "")
            and e.get("task_id") == record["task_id"]]


@pytest.mark.stack
def test_unknown_task_name_is_dead_lettered(plain_stack: Stack,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    running = Running(plain_stack)
    headers, body = task_message("tasks.format_disk", [{"bucket": "filesearch-uploads",
                                                        "key": "x.txt"}])

    publish(plain_stack, "index", json.dumps(body), "application/json", "utf-8", headers,
            monkeypatch)

    record = record_for(running, headers["id"])
    assert record["reason"] == "unknown-task" and record["task"] == "tasks.format_disk"
    assert record["queue"] == "index"
    assert "tasks.format_disk" in record["raw"]["headers"]
    running.wait_for(lambda: queue_is_empty(running, "filesearch-index"), timeout=30)


@pytest.mark.stack
def test_a_body_that_is_no_celery_message_is_dead_lettered(plain_stack: Stack) -> None:
    running = Running(plain_stack)
    marker = f"not a task {uuid.uuid4()}"

    running.sqs.send_message(QueueUrl=running.queue_url("filesearch-extract-other"),
                             MessageBody=marker)

    record: dict[str, Any] = running.wait_for(lambda: next(
        (r for r in running.dead_letters()
         if marker in str(r.get("raw", {}).get("body", {}).get("data"))), None), timeout=60)
    assert record["reason"] == "undecodable-message" and record["task"] == "(none)"
    running.wait_for(lambda: queue_is_empty(running, "filesearch-extract-other"), timeout=30)


@pytest.mark.stack
def test_chain_for_a_disallowed_bucket_is_dead_lettered_and_never_read(
        plain_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given an object in a bucket outside ALLOWED_BUCKETS
    running = Running(plain_stack)
    running.s3.create_bucket(Bucket="not-allowed")
    running.s3.put_object(Bucket="not-allowed", Key="secret/plans.txt", Body=b"top secret")
    ref = ObjectRef(bucket="not-allowed", key="secret/plans.txt",
                    event_name="ObjectCreated:Put").to_dict()
    rest: list[dict[str, Any]] = [
        {"task": "tasks.index", "args": [], "kwargs": {}, "options": {"queue": "index"},
         "subtask_type": None, "immutable": False},
        {"task": "tasks.extract", "args": [], "kwargs": {},
         "options": {"queue": "extract-other"}, "subtask_type": None, "immutable": False}]
    headers, body = task_message("tasks.fetch", [ref], chain=rest)

    # When a well-formed chain for it reaches a worker (a forged or misrouted event)
    publish(plain_stack, "fetch", json.dumps(body), "application/json", "utf-8", headers,
            monkeypatch)

    # Then it is dead-lettered with its reason, once, and nothing was read or indexed
    record = record_for(running, headers["id"])
    assert record["reason"] == "bucket-not-allowed" and record["attempts"] == 1
    assert record["object"]["bucket"] == "not-allowed"
    time.sleep(2)
    assert len([r for r in running.dead_letters() if r.get("task_id") == headers["id"]]) == 1
    for msg in ("fetched", "extracted", "indexed"):
        assert not events_for(plain_stack, "worker", "secret/plans.txt", msg), msg
